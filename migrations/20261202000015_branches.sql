-- Branches (issue 23): messages form a tree. An edit is a new user message beside the one it
-- replaces (the same parent); a regeneration is a new answer beside the old one. `seq` stays
-- the gap-free insertion order of the whole conversation (polling and the event stream
-- deliver every branch); the conversation remembers the leaf the user looks at.
ALTER TABLE messages ADD COLUMN parent_id uuid REFERENCES messages (id);
-- The number of messages from the root to this one (1 for the first): a branch's length
-- without walking it.
ALTER TABLE messages ADD COLUMN depth integer;
-- Siblings share this key (the parent, or the conversation for first messages), so one index
-- answers both "the siblings of m" and "the children of p".
ALTER TABLE messages ADD COLUMN sibling_of uuid
    GENERATED ALWAYS AS (COALESCE(parent_id, conversation_id)) STORED;
-- The changes other branches had made and still had in effect when this answer was written
-- (what the model was told), shown on the answer.
ALTER TABLE messages ADD COLUMN branch_changes jsonb;

-- Existing conversations are one straight line.
UPDATE messages m SET parent_id = p.id
FROM messages p
WHERE p.conversation_id = m.conversation_id AND p.seq = m.seq - 1;
UPDATE messages SET depth = seq;

-- Writers that do not say where a message goes (bulk imports, seeds) append it to the
-- straight line: its parent is the message before it.
CREATE FUNCTION messages_tree() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.depth IS NULL THEN
        SELECT id, depth + 1 INTO NEW.parent_id, NEW.depth
        FROM messages WHERE conversation_id = NEW.conversation_id AND seq = NEW.seq - 1;
        NEW.depth := COALESCE(NEW.depth, 1);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER messages_tree BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_tree();
ALTER TABLE messages ALTER COLUMN depth SET NOT NULL;

CREATE INDEX messages_siblings ON messages (sibling_of, seq);

-- The leaf of the branch the user looks at (NULL: the newest message, for conversations that
-- never branched), and whether the conversation ever branched: a straight one is read by
-- `seq` alone, without walking the tree.
ALTER TABLE conversations ADD COLUMN current_message_id uuid;
ALTER TABLE conversations ADD COLUMN branched boolean NOT NULL DEFAULT false;
UPDATE conversations c SET current_message_id = m.id
FROM messages m WHERE m.conversation_id = c.id AND m.seq = c.last_seq;

-- A regeneration's `client_id` (it stores no user message to carry one): a resend shares the
-- first request's turn.
ALTER TABLE turns ADD COLUMN client_id uuid;
CREATE UNIQUE INDEX turns_client_id ON turns (conversation_id, client_id) WHERE client_id IS NOT NULL;
