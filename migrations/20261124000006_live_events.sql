-- Live replies. What a user's open tabs and API clients are told, in order: stored messages,
-- conversation changes. Each row is announced with NOTIFY (its id only: NOTIFY payloads are
-- capped at 8,000 bytes) and kept for a while, so a client reconnecting with `Last-Event-ID`
-- gets what it missed. Deltas and activity are not kept: the running turn's text so far is in
-- `turn_activity.partial`, which is what a (re)connecting client is sent first.
CREATE TABLE live_events (
    id         bigserial   PRIMARY KEY,
    user_id    uuid        NOT NULL,
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX live_events_user ON live_events (user_id, id);
CREATE INDEX live_events_age ON live_events (created_at);

-- The reply written so far by the running turn (streamed model output).
ALTER TABLE turn_activity ADD COLUMN partial text NOT NULL DEFAULT '';
