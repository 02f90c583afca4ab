-- The Go original creates this same table on its first start. IF NOT EXISTS
-- lets this migration take such a table over, keeping its rows.
CREATE TABLE IF NOT EXISTS message (
    value TEXT PRIMARY KEY
);
