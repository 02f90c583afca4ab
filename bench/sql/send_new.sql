-- POST /send with a new value, as the service sends it to PostgreSQL and
-- CockroachDB: one statement that inserts the value and, only if it was new,
-- counts it in its shard. Diesel sends it unprepared (-M extended).
\set n random(1, 9000000000000000000)
\set shard random(0, 15)
WITH inserted AS (
    INSERT INTO message (value) VALUES ('pgbench-' || :client_id || '-' || :n)
    ON CONFLICT DO NOTHING RETURNING value
)
UPDATE message_count SET n = n + 1 WHERE shard = :shard AND EXISTS (SELECT 1 FROM inserted);
