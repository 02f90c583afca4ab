//! What the integration tests share: databases, the service under test, an
//! HTTP client and a TCP proxy that can cut the database off.

mod client;
mod database;
mod load;
mod proxy;
mod service;

pub use client::Client;
pub use database::{Isolation, TestDatabase};
pub use load::{WriteLoad, lost_writes};
pub use proxy::Proxy;
pub use service::{Service, ServiceBuilder};

use std::time::{Duration, Instant};

/// Polls `condition` every 20 ms until it holds or `timeout` passes, and
/// returns whether it held.
pub fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The JSON body `POST /send` takes.
pub fn send_body(value: &str) -> String {
    serde_json::json!({ "value": value }).to_string()
}
