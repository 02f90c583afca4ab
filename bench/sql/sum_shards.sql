-- GET / with the sum done in SQL, the first way the read was written.
SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM message_count;
