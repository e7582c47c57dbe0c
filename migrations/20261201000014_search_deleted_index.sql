-- A search leaves out the caller's deleted conversations by id (a short list, hashed once per
-- search) instead of joining every match to its conversation.
CREATE INDEX conversations_user_deleted ON conversations (user_id) WHERE deleted_at IS NOT NULL;
