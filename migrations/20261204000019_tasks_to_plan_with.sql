-- Tasks people can plan with (issue 26): a due date (and time), a priority, tags and a repeat.

-- The user's IANA time zone ("Europe/Berlin"): due dates are days and times there. NULL until
-- the browser tells it on the first sign-in (until then: UTC).
ALTER TABLE users ADD COLUMN time_zone text;

-- `due_date` and `due_time` as the user wrote them, in their zone (no time: the whole day);
-- `due_at` is the instant the task becomes overdue (the time, or the end of the day), kept
-- in step with the user's zone by the service, for the views and for reminders.
ALTER TABLE tasks
    ADD COLUMN due_date   date,
    ADD COLUMN due_time   time,
    ADD COLUMN due_at     timestamptz,
    ADD COLUMN priority   smallint NOT NULL DEFAULT 4 CHECK (priority BETWEEN 1 AND 4),
    ADD COLUMN tags       text[]   NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 10),
    -- An RFC 5545 RRULE (FREQ=WEEKLY;BYDAY=MO…), repeating from the due date.
    ADD COLUMN recurrence text CHECK (char_length(recurrence) <= 200),
    ADD CONSTRAINT tasks_due_time_needs_a_date CHECK (due_time IS NULL OR due_date IS NOT NULL),
    ADD CONSTRAINT tasks_repeat_needs_a_date CHECK (recurrence IS NULL OR due_date IS NOT NULL);

-- The views (today, upcoming, overdue) read a user's open tasks by when they are due.
CREATE INDEX tasks_open_by_due ON tasks (user_id, due_at)
    WHERE deleted_at IS NULL AND NOT completed AND due_at IS NOT NULL;
CREATE INDEX tasks_tags ON tasks USING gin (tags) WHERE deleted_at IS NULL;

-- Each completion of a repeating task (the task itself moves on to its next occurrence).
CREATE TABLE task_completions (
    user_id      uuid        NOT NULL,
    task_id      integer     NOT NULL,
    due_date     date        NOT NULL,
    due_time     time,
    completed_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (user_id, task_id) REFERENCES tasks (user_id, id) ON DELETE CASCADE
);
CREATE INDEX task_completions_of_task ON task_completions (user_id, task_id, completed_at);
