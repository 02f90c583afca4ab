-- The floor for a write: a new value inserted by one statement, without the
-- count. The target for POST /send is measured against this.
-- client_id and a 63-bit random number keep values from colliding.
\set n random(1, 9000000000000000000)
INSERT INTO message (value) VALUES ('pgbench-up-' || :client_id || '-' || :n) ON CONFLICT DO NOTHING;
