//! A fresh database per test on the server that `TEST_DATABASE_URL` names,
//! dropped again when the test ends.

use std::sync::atomic::{AtomicU32, Ordering};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The transaction isolation the service's sessions run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// CockroachDB's default, which PostgreSQL runs only when asked.
    Serializable,
    ReadCommitted,
}

/// A database of the test's own.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
    is_cockroach: bool,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

impl TestDatabase {
    /// Creates an empty database with a name no other test uses.
    pub fn create() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let admin_url =
            std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_SERVER.to_owned());
        let name = format!(
            "ping_roach_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = connect(&admin_url);
        let version: String =
            diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>("version()"))
                .get_result(&mut admin)
                .expect("the test database server answers");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("the test database is created");
        let url = replace_database(&admin_url, &name);
        Self {
            admin_url,
            name,
            url,
            is_cockroach: version.contains("CockroachDB"),
        }
    }

    /// The URL the service connects with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL with every session set to `isolation`.
    pub fn url_with(&self, isolation: Isolation) -> String {
        let level = match isolation {
            Isolation::Serializable => "serializable",
            Isolation::ReadCommitted => "read%5C%20committed",
        };
        let separator = if self.url.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options=-c%20default_transaction_isolation%3D{level}",
            self.url
        )
    }

    /// The host and port the database server listens on.
    pub fn server_address(&self) -> std::net::SocketAddr {
        use std::net::ToSocketAddrs;
        let authority = self
            .url
            .split("://")
            .nth(1)
            .unwrap()
            .split(['/', '?'])
            .next()
            .unwrap();
        let host_port = authority.rsplit('@').next().unwrap();
        let host_port = if host_port.contains(':') {
            host_port.to_owned()
        } else {
            format!("{host_port}:5432")
        };
        host_port.to_socket_addrs().unwrap().next().unwrap()
    }

    /// The URL with the server's address swapped for `address`, such as a
    /// proxy's.
    pub fn url_via(&self, address: std::net::SocketAddr) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap();
        let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let userinfo = authority
            .rsplit_once('@')
            .map(|(user, _)| format!("{user}@"))
            .unwrap_or_default();
        format!("{scheme}://{userinfo}{address}{tail}")
    }

    /// A connection of the test's own, beside the service's.
    pub fn connect(&self) -> PgConnection {
        connect(&self.url)
    }

    /// Runs `sql` and panics if it fails.
    pub fn execute(&self, sql: &str) {
        self.connect()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// `SELECT count(*) FROM message`: the truth the service's count must
    /// match.
    pub fn message_rows(&self) -> i64 {
        diesel::sql_query("SELECT count(*) AS count FROM message")
            .get_result::<Count>(&mut self.connect())
            .unwrap()
            .count
    }

    /// Every stored value, sorted.
    pub fn values(&self) -> Vec<String> {
        #[derive(QueryableByName)]
        struct Value {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        diesel::sql_query("SELECT value FROM message ORDER BY value")
            .load::<Value>(&mut self.connect())
            .unwrap()
            .into_iter()
            .map(|row| row.value)
            .collect()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let drop = if self.is_cockroach {
            format!("DROP DATABASE IF EXISTS {} CASCADE", self.name)
        } else {
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)
        };
        // A leftover database is harmless, and a failing drop must not
        // hide the test's own failure.
        let _ = connect(&self.admin_url).batch_execute(&drop);
    }
}

fn connect(url: &str) -> PgConnection {
    PgConnection::establish(url).unwrap_or_else(|e| {
        panic!(
            "cannot reach the test database server ({e}); start PostgreSQL or set \
             TEST_DATABASE_URL (see the README)"
        )
    })
}

fn replace_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("TEST_DATABASE_URL is a URL");
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let query = tail.find('?').map_or("", |index| &tail[index..]);
    format!("{scheme}://{authority}/{name}{query}")
}
