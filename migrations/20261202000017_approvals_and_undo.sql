-- Approval before the assistant's changes, and undo of every change it made (issue #24).

-- When the chat agent asks before running a tool: before deleting (the default), before any
-- change, or never.
ALTER TABLE users ADD COLUMN approval_policy text NOT NULL DEFAULT 'deletes'
    CHECK (approval_policy IN ('deletes', 'changes', 'never'));

-- Deleted tasks are kept (and keep their number) so a deletion can be undone.
ALTER TABLE tasks ADD COLUMN deleted_at timestamptz;

-- A turn parked on the user's decision holds no lease and no owner. It counts as the
-- conversation's one turn in progress: a new send declines what it waits for first.
ALTER TABLE turns DROP CONSTRAINT turns_state_check;
ALTER TABLE turns ADD CONSTRAINT turns_state_check
    CHECK (state IN ('running', 'awaiting_approval', 'complete', 'error', 'stopped'));
DROP INDEX turns_one_running;
CREATE UNIQUE INDEX turns_one_running ON turns (conversation_id)
    WHERE state IN ('running', 'awaiting_approval');

-- A declined call is recorded like a made one (the model is told), with what it would have
-- changed; every change records the task before and after, for undo.
ALTER TABLE turn_tool_calls DROP CONSTRAINT turn_tool_calls_status_check;
ALTER TABLE turn_tool_calls ADD CONSTRAINT turn_tool_calls_status_check
    CHECK (status IN ('success', 'error', 'declined'));
ALTER TABLE turn_tool_calls ADD COLUMN change jsonb;

-- The calls a parked turn waits on, each at the call slot it will be recorded in.
CREATE TABLE turn_approvals (
    turn_id         uuid        NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    idx             integer     NOT NULL,
    conversation_id uuid        NOT NULL,
    call_id         text        NOT NULL,
    tool_name       text        NOT NULL,
    arguments       jsonb       NOT NULL,
    -- {id, title} of the task the call would change (null for a new one).
    task            jsonb,
    decision        text        CHECK (decision IN ('approved', 'declined')),
    decided_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (turn_id, idx)
);
-- A page's activity and a decision find the pending calls of a conversation.
CREATE INDEX turn_approvals_pending ON turn_approvals (conversation_id, call_id)
    WHERE decision IS NULL;
