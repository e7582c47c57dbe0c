-- Durable agent turns (issue: durable turns). A turn answers one user message; it is owned by
-- one replica at a time through a lease that the owner renews while it works. When the owner
-- dies, any replica takes the turn over once the lease has expired and resumes it.
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check
    CHECK (status IN ('complete', 'error', 'stopped'));

CREATE TABLE turns (
    id              uuid        PRIMARY KEY,
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         uuid        NOT NULL,
    -- The user message this turn answers.
    user_seq        bigint      NOT NULL,
    state           text        NOT NULL CHECK (state IN ('running', 'complete', 'error', 'stopped')),
    -- The replica running it (a random id per process start) and until when it may.
    owner           uuid,
    lease_until     timestamptz,
    -- How many times the turn was started (1, then +1 at every takeover).
    attempts        integer     NOT NULL DEFAULT 1,
    stop_requested  boolean     NOT NULL DEFAULT false,
    -- The assistant message that ended it; NULL while running, or when none could be stored
    -- (the conversation was deleted), then `error_detail` says why.
    reply_seq       bigint,
    error_detail    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One running turn per conversation (turns in a conversation run one at a time).
CREATE UNIQUE INDEX turns_one_running ON turns (conversation_id) WHERE state = 'running';
-- The sweeper's scan: running turns by lease expiry.
CREATE INDEX turns_running_lease ON turns (lease_until) WHERE state = 'running';
-- Retries and resumes read every attempt at one user message.
CREATE INDEX turns_user_message ON turns (conversation_id, user_seq);

-- Every tool call of a turn, written in the same transaction as the call's effect, so a call
-- that completed is never run again (a replay finds its row and returns the recorded result).
CREATE TABLE turn_tool_calls (
    turn_id     uuid        NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    idx         integer     NOT NULL,
    call_id     text        NOT NULL,
    tool_name   text        NOT NULL,
    arguments   jsonb       NOT NULL,
    result      jsonb       NOT NULL,
    status      text        NOT NULL CHECK (status IN ('success', 'error')),
    started_at  timestamptz NOT NULL,
    duration_ms bigint      NOT NULL,
    PRIMARY KEY (turn_id, idx)
);

-- Messages left unanswered before this migration (a crash under the old code) become running
-- turns with an expired lease: the sweeper picks them up and answers them.
INSERT INTO turns (id, conversation_id, user_id, user_seq, state, owner, lease_until)
SELECT gen_random_uuid(), c.id, c.user_id, c.last_seq, 'running', NULL, now() - interval '1 hour'
FROM conversations c
JOIN messages m ON m.conversation_id = c.id AND m.seq = c.last_seq
WHERE m.role = 'user' AND c.deleted_at IS NULL;
