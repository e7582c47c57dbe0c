-- The live layer (issue 22).

-- The reply written so far grows in constant time per flush: each flush appends a piece
-- (instead of rewriting the whole text, which made a long reply quadratic), and the
-- activity row only counts the characters so far (the offset of the next delta). UNLOGGED
-- like `turn_activity`: worthless after a crash.
ALTER TABLE turn_activity DROP COLUMN partial;
ALTER TABLE turn_activity ADD COLUMN partial_chars integer NOT NULL DEFAULT 0;
CREATE UNLOGGED TABLE turn_reply_pieces (
    conversation_id uuid    NOT NULL,
    user_seq        bigint  NOT NULL,
    -- Characters of the reply before this piece.
    at              integer NOT NULL,
    piece           text    NOT NULL,
    PRIMARY KEY (conversation_id, user_seq, at)
);

-- Single-use, short-lived tickets for an EventSource that cannot send an Authorization
-- header (the CSR build, other apps): the session token never goes into a URL. Only a hash
-- is kept; a ticket dies with its session.
CREATE UNLOGGED TABLE stream_tickets (
    ticket_hash bytea       PRIMARY KEY,
    user_id     uuid        NOT NULL,
    session_id  uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX stream_tickets_expiry ON stream_tickets (expires_at);
