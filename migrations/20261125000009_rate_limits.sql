-- Rate limits shared by every replica (GCRA): the theoretical arrival time per limiter key.
-- Unlogged: losing it in a crash only forgives some requests.
CREATE UNLOGGED TABLE rate_limits (
    key text        PRIMARY KEY,
    tat timestamptz NOT NULL
);
