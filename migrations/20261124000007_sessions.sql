-- Server-side sessions: a token names its session (`sid`), and a request is authenticated
-- only while that session exists, is not revoked, and its user exists. Logout revokes one
-- session; deleting an account deletes its sessions with it. Replicas share them here.
CREATE TABLE sessions (
    id         uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);
