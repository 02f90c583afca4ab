-- The floor for a repeated value: the insert finds a conflict, nothing else.
INSERT INTO message (value) VALUES ('hot') ON CONFLICT DO NOTHING;
