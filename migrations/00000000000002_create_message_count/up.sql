-- An exact count of the rows in message, split over 16 shards so that
-- concurrent writers rarely update the same row; GET / sums the shards
-- instead of scanning message. The service keeps shards 0 to 15 and adds
-- to one of them in the same transaction as each new message.
CREATE TABLE message_count (
    shard BIGINT PRIMARY KEY,
    n BIGINT NOT NULL
);

INSERT INTO message_count (shard, n) VALUES
    (0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0),
    (8, 0), (9, 0), (10, 0), (11, 0), (12, 0), (13, 0), (14, 0), (15, 0);

-- Rows that are already there, such as those the Go original stored.
UPDATE message_count SET n = (SELECT count(*) FROM message) WHERE shard = 0;
