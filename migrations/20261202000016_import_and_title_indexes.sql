-- Review of issue 25: a deleted conversation no longer blocks importing it again (a backup
-- restores what was deleted), and typo matching of titles reads only the searcher's titles.
DROP INDEX conversations_import_key;
CREATE UNIQUE INDEX conversations_import_key
    ON conversations (user_id, import_key) WHERE import_key IS NOT NULL AND deleted_at IS NULL;

DROP INDEX conversations_title_trgm;
CREATE INDEX conversations_title_trgm
    ON conversations USING gin (user_id, title gin_trgm_ops) WHERE deleted_at IS NULL;
