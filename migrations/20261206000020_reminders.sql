-- Reminders (issue 26): every open task with a due date is reminded once per occurrence, at
-- its due time (a day without a time: 09:00 in the user's zone). `remind_at` is the instant
-- the next reminder is owed, NULL once it was sent (or when there is none to send); it is kept
-- by the trigger below for every write, whichever statement makes it, and cleared by the
-- replica that sends the reminder, in the transaction that stores the reminder's event.
ALTER TABLE tasks ADD COLUMN remind_at timestamptz;

CREATE INDEX tasks_reminders_owed ON tasks (remind_at) WHERE remind_at IS NOT NULL;

-- Replicas sleep until the earliest reminder owed; a new one wakes them (the payload is
-- empty: identical notifications of one transaction are sent once).
CREATE FUNCTION tasks_keep_remind_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT'
       OR NEW.due_at IS DISTINCT FROM OLD.due_at
       OR NEW.completed IS DISTINCT FROM OLD.completed
       OR NEW.deleted_at IS DISTINCT FROM OLD.deleted_at THEN
        NEW.remind_at := NULL;
        IF NEW.due_date IS NOT NULL AND NOT NEW.completed AND NEW.deleted_at IS NULL THEN
            NEW.remind_at := CASE
                WHEN NEW.due_time IS NOT NULL THEN NEW.due_at
                ELSE (NEW.due_date + time '09:00') AT TIME ZONE COALESCE(
                    (SELECT time_zone FROM users WHERE id = NEW.user_id), 'UTC')
            END;
            -- An occurrence already past when it was set is not reminded (it shows as due).
            IF NEW.remind_at <= now() THEN
                NEW.remind_at := NULL;
            END IF;
        END IF;
        IF NEW.remind_at IS NOT NULL THEN
            PERFORM pg_notify('chatkit_reminders', '');
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER tasks_keep_remind_at BEFORE INSERT OR UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_keep_remind_at();

-- Open tasks due later than now are owed their reminder.
UPDATE tasks t SET remind_at = CASE
        WHEN t.due_time IS NOT NULL THEN t.due_at
        ELSE (t.due_date + time '09:00') AT TIME ZONE COALESCE(
            (SELECT time_zone FROM users WHERE id = t.user_id), 'UTC')
    END
WHERE t.due_date IS NOT NULL AND NOT t.completed AND t.deleted_at IS NULL;
UPDATE tasks SET remind_at = NULL WHERE remind_at <= now();
