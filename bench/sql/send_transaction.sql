-- POST /send with a new value as a transaction of two statements: how the
-- service writes to SQLite, and how it wrote to PostgreSQL before it used
-- one statement. For information.
\set n random(1, 9000000000000000000)
\set shard random(0, 15)
BEGIN;
INSERT INTO message (value) VALUES ('pgbench-tx-' || :client_id || '-' || :n) ON CONFLICT DO NOTHING;
UPDATE message_count SET n = n + 1 WHERE shard = :shard;
COMMIT;
