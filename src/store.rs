//! The message store: a pool of CockroachDB, PostgreSQL or SQLite
//! connections, the embedded migrations, and the queries with their retries.

use std::error::Error as StdError;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as QueryError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use log::{debug, info, warn};

use crate::config::{Config, Database};
use crate::models::NewMessage;
use crate::retry::{RetryPolicy, retry};
use crate::schema::{message, message_count};

/// The migrations in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!();

/// The longest a single statement may run on PostgreSQL or CockroachDB, in
/// the syntax both accept.
const STATEMENT_TIMEOUT: &str = "3s";

/// A new value and its count in one statement on PostgreSQL and CockroachDB:
/// one round trip instead of four, and a statement that CockroachDB retries
/// by itself on a conflict. SQLite runs no INSERT inside WITH, and has no
/// round trips to save, so it takes the same steps in a transaction.
const INSERT_AND_COUNT: &str = "\
    WITH inserted AS (\
        INSERT INTO message (value) VALUES ($1) ON CONFLICT DO NOTHING RETURNING value\
    ) \
    UPDATE message_count SET n = n + 1 \
    WHERE shard = $2 AND EXISTS (SELECT 1 FROM inserted)";

/// Shards `0..COUNT_SHARDS` of `message_count`, as the migration creates
/// them.
const COUNT_SHARDS: u64 = 16;

/// Retries of one request's transaction: short, so that a request that
/// cannot be served is answered well within five seconds.
const QUERY_RETRY: RetryPolicy = RetryPolicy {
    first_delay: Duration::from_millis(5),
    max_delay: Duration::from_millis(250),
    give_up_after: Duration::from_secs(2),
};

/// A connection to whichever database the configuration names; queries
/// that every backend understands are written once against it, and only
/// the write path takes a dialect's shortcut (see `INSERT_AND_COUNT`).
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// The service's access to its messages.
pub struct Store {
    pool: Pool<Manager>,
}

/// What went wrong talking to the database.
#[derive(Debug)]
pub enum StoreError {
    /// No connection could be had in time: the database is down,
    /// unreachable or saturated.
    Unavailable(r2d2::PoolError),
    /// The database kept answering with a transient error (a write
    /// conflict or a lost connection) until the retries ran out.
    Contended(QueryError),
    /// A statement ran into its time limit, most likely waiting for a lock.
    TimedOut(QueryError),
    /// The database refused a statement.
    Query(QueryError),
    /// A connection could not be opened.
    Connect(diesel::ConnectionError),
    /// The embedded migrations could not be applied.
    Migration(Box<dyn StdError + Send + Sync>),
}

impl StoreError {
    /// True when the database cannot be used right now, but may be soon.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_) | Self::Contended(_) | Self::TimedOut(_) | Self::Connect(_)
        )
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(_) => f.write_str("no database connection became free in time"),
            Self::Contended(_) => f.write_str("the database kept failing with a transient error"),
            Self::TimedOut(_) => f.write_str("a statement ran out of time"),
            Self::Query(_) => f.write_str("the database refused a statement"),
            // The pool keeps only this text of a failed connection, so it
            // carries the cause itself.
            Self::Connect(error) => write!(f, "could not connect to the database: {error}"),
            Self::Migration(_) => f.write_str("could not apply the migrations"),
        }
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Unavailable(error) => Some(error),
            Self::Contended(error) | Self::TimedOut(error) | Self::Query(error) => Some(error),
            Self::Connect(_) => None,
            Self::Migration(error) => Some(error.as_ref()),
        }
    }
}

impl Store {
    /// Connects with exponential backoff until `config.connect_timeout`,
    /// applies the pending migrations, then opens the pool.
    ///
    /// Replicas that start together on an empty database may collide while
    /// migrating; the loser's failed attempt is retried like a refused
    /// connection, and finds the work done.
    pub fn open(config: &Config) -> Result<Self, StoreError> {
        let manager = Manager::new(&config.database);
        let policy = RetryPolicy {
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
            give_up_after: config.connect_timeout,
        };
        let attempt = std::cell::Cell::new(0);
        retry(
            &policy,
            || {
                attempt.set(attempt.get() + 1);
                debug!("connecting to the database (attempt {})", attempt.get());
                let mut connection = manager.connect()?;
                // Migrations may take longer than a request may.
                lift_statement_timeout(&mut connection.inner)?;
                migrate(&mut connection.inner)
            },
            |_| true,
            |error, delay| {
                warn!(
                    "database not ready (attempt {}): {}; next attempt in {:.1}s",
                    attempt.get(),
                    crate::error::chain(error),
                    delay.as_secs_f64()
                )
            },
        )?;
        Ok(Self {
            pool: build_pool(manager, config),
        })
    }

    /// The number of distinct stored messages.
    pub fn count_messages(&self) -> Result<i64, StoreError> {
        self.with_retries(|conn| {
            // Summing the shards here rather than in SQL keeps the query a
            // plain, typed select that Diesel prepares once per connection:
            // SQL's SUM of BIGINT would be NUMERIC on PostgreSQL and DECIMAL
            // on CockroachDB, and only a raw cast would bring it back.
            let shards: Vec<i64> = message_count::table.select(message_count::n).load(conn)?;
            Ok(shards.iter().sum())
        })
    }

    /// Stores `value` unless it is already there, and keeps the count in
    /// step in the same transaction. Returns whether the value was new.
    pub fn save_message(&self, value: &str) -> Result<bool, StoreError> {
        let shard = shard_for(value);
        self.with_retries(|conn| match conn {
            AnyConnection::Postgresql(conn) => diesel::sql_query(INSERT_AND_COUNT)
                .bind::<diesel::sql_types::Text, _>(value)
                .bind::<diesel::sql_types::BigInt, _>(shard)
                .execute(conn)
                .map(|counted| counted > 0),
            AnyConnection::Sqlite(conn) => conn.transaction(|conn| {
                let inserted = diesel::insert_into(message::table)
                    .values(NewMessage { value })
                    .on_conflict_do_nothing()
                    .execute(conn)?;
                if inserted > 0 {
                    diesel::update(message_count::table.find(shard))
                        .set(message_count::n.eq(message_count::n + 1))
                        .execute(conn)?;
                }
                Ok(inserted > 0)
            }),
        })
    }

    /// Rebuilds the count from the rows in `message`, for rows written
    /// without the service. Returns the new count.
    pub fn recount(&self) -> Result<i64, StoreError> {
        self.with_retries(|conn| {
            conn.transaction(|conn| {
                // Resetting every shard first locks them all, so that writers
                // still in flight either finish before the count is taken or
                // add their row on top of it afterwards.
                diesel::update(message_count::table)
                    .set(message_count::n.eq(0))
                    .execute(conn)?;
                let count: i64 = message::table.count().get_result(conn)?;
                diesel::update(message_count::table.find(0))
                    .set(message_count::n.eq(count))
                    .execute(conn)?;
                Ok(count)
            })
        })
    }

    /// Runs `operation` on a pooled connection, again on another one when
    /// it fails with a write conflict or a lost connection.
    fn with_retries<T>(
        &self,
        mut operation: impl FnMut(&mut AnyConnection) -> QueryResult<T>,
    ) -> Result<T, StoreError> {
        retry(
            &QUERY_RETRY,
            || {
                let mut connection = self.pool.get().map_err(StoreError::Unavailable)?;
                operation(&mut connection.inner).map_err(|error| {
                    if is_lost_connection(&error) {
                        // Keeps the pool from lending this connection again.
                        connection.lost = true;
                    }
                    if is_transient(&error) {
                        StoreError::Contended(error)
                    } else if is_statement_timeout(&error) {
                        StoreError::TimedOut(error)
                    } else {
                        StoreError::Query(error)
                    }
                })
            },
            |error| matches!(error, StoreError::Contended(_)),
            |error, delay| debug!("retrying in {delay:?}: {}", crate::error::chain(error)),
        )
    }
}

fn lift_statement_timeout(connection: &mut AnyConnection) -> Result<(), StoreError> {
    match connection {
        AnyConnection::Postgresql(connection) => connection
            .batch_execute("SET statement_timeout = 0")
            .map_err(StoreError::Query),
        AnyConnection::Sqlite(_) => Ok(()),
    }
}

/// Applies the pending migrations and logs each one applied.
fn migrate(connection: &mut AnyConnection) -> Result<(), StoreError> {
    let applied = connection
        .run_pending_migrations(MIGRATIONS)
        .map_err(StoreError::Migration)?;
    for version in applied {
        info!("applied migration {version}");
    }
    Ok(())
}

fn build_pool(manager: Manager, config: &Config) -> Pool<Manager> {
    Pool::builder()
        .max_size(config.pool_size)
        .connection_timeout(config.checkout_timeout)
        // A dead connection shows itself on use and is then retried on a
        // fresh one; testing each checkout would cost a round trip per
        // request.
        .test_on_check_out(false)
        .error_handler(Box::new(QuietErrorHandler))
        .build_unchecked(manager)
}

/// Which counter shard a new value adds to. Any spread works; hashing
/// spreads distinct values evenly without a source of randomness.
fn shard_for(value: &str) -> i64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    (hasher.finish() % COUNT_SHARDS) as i64
}

/// Errors worth another attempt on a fresh transaction: CockroachDB's
/// retry error and PostgreSQL's serialization failure (SQLSTATE 40001), a
/// dropped connection, and SQLite's lock timeout.
pub fn is_transient(error: &QueryError) -> bool {
    match error {
        QueryError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        QueryError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            info.message().contains("database is locked")
        }
        _ => is_lost_connection(error),
    }
}

/// PostgreSQL's and CockroachDB's texts for a statement cancelled by
/// `statement_timeout`; Diesel does not expose the SQLSTATE (57014).
fn is_statement_timeout(error: &QueryError) -> bool {
    match error {
        QueryError::DatabaseError(_, info) => info.message().contains("statement timeout"),
        _ => false,
    }
}

fn is_lost_connection(error: &QueryError) -> bool {
    matches!(
        error,
        QueryError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
    )
}

/// A pooled connection, marked when its server went away.
pub struct StoreConnection {
    inner: AnyConnection,
    lost: bool,
}

/// Opens connections for the pool, to the backend the configuration chose.
struct Manager {
    database: Database,
}

impl Manager {
    fn new(database: &Database) -> Self {
        let database = match database {
            Database::Postgres(target) => {
                // libpq's TLS runs on OpenSSL, whose exit-time cleanup would
                // pull its state from under a pool thread that is still in a
                // handshake when the process exits, and crash it. Setting
                // OpenSSL up first, without that cleanup, avoids the race.
                openssl_sys::init();
                Database::Postgres(with_client_timeouts(target))
            }
            Database::Sqlite(path) => Database::Sqlite(path.clone()),
        };
        Self { database }
    }
}

impl ManageConnection for Manager {
    type Connection = StoreConnection;
    type Error = StoreError;

    fn connect(&self) -> Result<StoreConnection, StoreError> {
        let inner = match &self.database {
            Database::Postgres(target) => {
                let mut connection =
                    diesel::PgConnection::establish(target).map_err(StoreError::Connect)?;
                // A request must not wait without end on a lock that someone
                // else holds: past this, it is answered with 503.
                connection
                    .batch_execute(&format!("SET statement_timeout = '{STATEMENT_TIMEOUT}'"))
                    .map_err(StoreError::Query)?;
                AnyConnection::Postgresql(connection)
            }
            Database::Sqlite(path) => AnyConnection::Sqlite(open_sqlite(path)?),
        };
        Ok(StoreConnection { inner, lost: false })
    }

    fn is_valid(&self, connection: &mut StoreConnection) -> Result<(), StoreError> {
        connection.inner.ping().map_err(StoreError::Query)
    }

    fn has_broken(&self, connection: &mut StoreConnection) -> bool {
        connection.lost || connection.inner.is_broken()
    }
}

fn open_sqlite(path: &Path) -> Result<diesel::SqliteConnection, StoreError> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|error| {
            StoreError::Connect(diesel::ConnectionError::BadConnection(format!(
                "cannot create {}: {error}",
                parent.display()
            )))
        })?;
    }
    let target = path.to_str().ok_or_else(|| {
        StoreError::Connect(diesel::ConnectionError::InvalidConnectionUrl(
            "the SQLite path is not valid UTF-8".to_owned(),
        ))
    })?;
    let mut connection =
        diesel::SqliteConnection::establish(target).map_err(StoreError::Connect)?;
    // The busy timeout comes first, so that a connection opened while
    // another one writes queues for the lock instead of failing at once;
    // WAL lets readers run beside the one writer; FULL makes each answered
    // write survive a power loss.
    connection
        .batch_execute(
            "PRAGMA busy_timeout = 1000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;",
        )
        .map_err(StoreError::Query)?;
    Ok(connection)
}

/// Client-side limits that turn a vanished server into an error within
/// seconds instead of a hang; settings already in `target` are kept.
fn with_client_timeouts(target: &str) -> String {
    const SETTINGS: [(&str, &str); 5] = [
        ("connect_timeout", "3"),
        ("keepalives_idle", "5"),
        ("keepalives_interval", "2"),
        ("keepalives_count", "2"),
        ("tcp_user_timeout", "2500"),
    ];
    let is_url = target.contains("://");
    let mut result = target.to_owned();
    for (key, value) in SETTINGS {
        if target.contains(&format!("{key}=")) {
            continue;
        }
        if is_url {
            result.push(if result.contains('?') { '&' } else { '?' });
        } else {
            result.push(' ');
        }
        result.push_str(&format!("{key}={value}"));
    }
    result
}

/// Pool errors show up as `503` answers, each logged with its cause; the
/// pool's own retries in the background are worth a debug line only.
#[derive(Debug)]
struct QuietErrorHandler;

impl r2d2::HandleError<StoreError> for QuietErrorHandler {
    fn handle_error(&self, error: StoreError) {
        debug!(
            "the pool could not open a connection: {}",
            crate::error::chain(&error)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_timeouts_are_added_to_urls_and_connection_strings() {
        assert_eq!(
            with_client_timeouts("postgres://db/app?connect_timeout=9"),
            "postgres://db/app?connect_timeout=9&keepalives_idle=5&keepalives_interval=2\
             &keepalives_count=2&tcp_user_timeout=2500"
        );
        assert_eq!(
            with_client_timeouts("host='db'"),
            "host='db' connect_timeout=3 keepalives_idle=5 keepalives_interval=2 \
             keepalives_count=2 tcp_user_timeout=2500"
        );
    }

    #[test]
    fn shards_stay_within_the_migrated_rows() {
        let shards: std::collections::HashSet<i64> =
            (0..1000).map(|i| shard_for(&i.to_string())).collect();

        assert_eq!(shards, (0..COUNT_SHARDS as i64).collect());
    }
}
