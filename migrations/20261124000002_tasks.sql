-- Each user numbers their own tasks 1, 2, 3… ("mark task 3 done"); numbers are never reused.
ALTER TABLE users ADD COLUMN last_task_number integer NOT NULL DEFAULT 0;

CREATE TABLE tasks (
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id          integer     NOT NULL,
    title       text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description text        CHECK (char_length(description) <= 1000),
    completed   boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id)
);
