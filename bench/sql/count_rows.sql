-- For contrast only: counting the rows themselves, as a naive GET / would.
SELECT count(*) FROM message;
