-- What a no-JavaScript send that failed had typed (issue 21): kept here for the one redirect
-- back to the conversation, instead of travelling in the redirect's URL (up to 10,000
-- characters in a Location header, over proxies' limits and into their logs). Taken (deleted)
-- by the page that shows it; left-overs are pruned after an hour.
CREATE UNLOGGED TABLE form_drafts (
    id         uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    content    text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX form_drafts_created ON form_drafts (created_at);
