//! Integration tests: the real binary, listening on a free port, against a
//! fresh PostgreSQL (or CockroachDB) database or a temporary SQLite file.
//!
//! The database server is named by `TEST_DATABASE_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/postgres`; each test creates its own
//! database there and drops it afterwards. `PING_ROACH_BIN` runs another
//! build of the binary, such as the release build the image ships.

mod concurrency;
mod contract;
mod faults;
mod lifecycle;
mod server;
mod support;
