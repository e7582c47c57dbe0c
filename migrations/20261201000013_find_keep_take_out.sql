-- Find, keep and take out (issue 25): search, pin and archive, import.

-- btree_gin lets one GIN index hold the owner and the words, so a search reads only the
-- searching user's matches (not every user's, filtered afterwards); pg_trgm matches titles
-- with a typo. Both ship with Postgres and are trusted extensions.
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE conversations
    ADD COLUMN pinned      boolean     NOT NULL DEFAULT false,
    ADD COLUMN archived_at timestamptz,
    -- Where an imported conversation came from (`chatkit:<id>`, `chatgpt:<id>`): importing
    -- the same file again finds it and skips it.
    ADD COLUMN import_key  text,
    ADD COLUMN title_search tsvector GENERATED ALWAYS AS (to_tsvector('english', title)) STORED;

-- The sidebar: pinned first, then by last activity; archived ones are their own list.
DROP INDEX conversations_user_recent;
CREATE INDEX conversations_user_recent
    ON conversations (user_id, pinned DESC, updated_at DESC, id DESC)
    WHERE deleted_at IS NULL AND archived_at IS NULL;
CREATE INDEX conversations_user_archived
    ON conversations (user_id, pinned DESC, updated_at DESC, id DESC)
    WHERE deleted_at IS NULL AND archived_at IS NOT NULL;
CREATE UNIQUE INDEX conversations_import_key
    ON conversations (user_id, import_key) WHERE import_key IS NOT NULL;
CREATE INDEX conversations_title_search
    ON conversations USING gin (user_id, title_search) WHERE deleted_at IS NULL;
CREATE INDEX conversations_title_trgm
    ON conversations USING gin (title gin_trgm_ops) WHERE deleted_at IS NULL;

-- Messages carry their owner so the search index can be per user. A trigger fills it from
-- the conversation: every writer (the app, imports, scripts that seed data) gets it right.
ALTER TABLE messages
    ADD COLUMN user_id uuid,
    ADD COLUMN search tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED;
UPDATE messages m SET user_id = c.user_id FROM conversations c WHERE c.id = m.conversation_id;
ALTER TABLE messages ALTER COLUMN user_id SET NOT NULL;

CREATE FUNCTION messages_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT user_id INTO NEW.user_id FROM conversations WHERE id = NEW.conversation_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER messages_owner BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_owner();

CREATE INDEX messages_search ON messages USING gin (user_id, search);
