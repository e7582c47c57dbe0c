-- Attempts are fenced, not replicas (issue 21): every start of a turn (the first run and each
-- takeover) gets its own id. Lease renewal, tool-call records and the final store compare it,
-- so a process that froze past its lease and woke up can no longer act for the turn, even when
-- the same process started the attempt that replaced it.
ALTER TABLE turns ADD COLUMN attempt_id uuid;
UPDATE turns SET attempt_id = gen_random_uuid() WHERE attempt_id IS NULL;
ALTER TABLE turns ALTER COLUMN attempt_id SET NOT NULL;
