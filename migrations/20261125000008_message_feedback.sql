-- Thumbs up/down on an assistant reply (ChatKit's items.feedback): the latest kind per user and
-- message. Kept with the message's conversation, so a deleted conversation keeps it too.
CREATE TABLE message_feedback (
    message_id uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text        NOT NULL CHECK (kind IN ('positive', 'negative')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, user_id)
);
