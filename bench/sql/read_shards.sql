-- GET / as the service sends it: the 16 shard values, summed by the service.
-- Diesel prepares this select once per connection (-M prepared).
SELECT n FROM message_count;
