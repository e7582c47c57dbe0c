-- What a running agent turn is doing right now, for the UI's "Using add_task…" (SPEC §9) in
-- every tab. UNLOGGED: progress is worthless after a crash (the table is emptied, which is
-- right), and writing it must not cost a WAL flush per tool call. No foreign key, for the same
-- reason (a key check would lock, and WAL-log, the conversation row).
CREATE UNLOGGED TABLE turn_activity (
    conversation_id uuid        PRIMARY KEY,
    -- The user message being answered: the row only counts while it is the conversation's
    -- last message, so a stale row vanishes atomically when the reply is stored.
    user_seq        bigint      NOT NULL,
    -- The tool being used, or NULL while the model is thinking.
    tool_name       text,
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
