//! ping-roach: an HTTP service that stores the messages it is sent in
//! CockroachDB, PostgreSQL or SQLite and counts them.

pub mod cli;
pub mod config;
pub mod error;
pub mod http;
pub mod models;
mod retry;
pub mod schema;
pub mod server;
pub mod store;
