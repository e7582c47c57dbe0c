CREATE TABLE conversations (
    id                   uuid        PRIMARY KEY,
    user_id              uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title                text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    title_is_custom      boolean     NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    last_seq             bigint      NOT NULL DEFAULT 0,
    message_count        integer     NOT NULL DEFAULT 0,
    last_message_preview text        CHECK (char_length(last_message_preview) <= 100)
);

-- The sidebar: newest first, keyset-paginated on (updated_at, id), live rows only.
CREATE INDEX conversations_user_recent
    ON conversations (user_id, updated_at DESC, id DESC)
    WHERE deleted_at IS NULL;

CREATE TABLE messages (
    id              uuid        PRIMARY KEY,
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             bigint      NOT NULL CHECK (seq > 0),
    role            text        NOT NULL CHECK (role IN ('user', 'assistant')),
    content         text        NOT NULL,
    tool_calls      jsonb,
    status          text        NOT NULL DEFAULT 'complete' CHECK (status IN ('complete', 'error')),
    client_id       uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_conversation_seq UNIQUE (conversation_id, seq),
    CONSTRAINT messages_tool_calls_assistant_only CHECK (role = 'assistant' OR tool_calls IS NULL),
    CONSTRAINT messages_user_content_length CHECK (role <> 'user' OR char_length(content) BETWEEN 1 AND 10000)
);

-- Idempotency key: one message per client_id in a conversation.
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, client_id) WHERE client_id IS NOT NULL;
