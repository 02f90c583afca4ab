-- POST /send with the value every request sends, as the service sends it:
-- after the first, the insert finds a conflict and the shard is left alone.
WITH inserted AS (
    INSERT INTO message (value) VALUES ('hot') ON CONFLICT DO NOTHING RETURNING value
)
UPDATE message_count SET n = n + 1 WHERE shard = 0 AND EXISTS (SELECT 1 FROM inserted);
