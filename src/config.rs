//! Settings read once from the environment, with defaults for everything
//! except the database's password.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// Where the embedded default keeps its SQLite file, relative to the
/// working directory.
pub const DEFAULT_SQLITE_PATH: &str = "data/ping-roach.sqlite3";

/// Everything the service can be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub database: Database,
    pub http_host: IpAddr,
    /// `0` asks the system for a free port; the real one is logged.
    pub http_port: u16,
    /// Threads that answer requests.
    pub workers: usize,
    /// Connections the pool keeps open at most.
    pub pool_size: u32,
    /// How long a request waits for a free database connection before it
    /// is answered with `503`.
    pub checkout_timeout: Duration,
    /// How long start-up keeps trying to reach the database.
    pub connect_timeout: Duration,
    /// Requests with a larger body are refused with `413`.
    pub body_limit: usize,
    /// Values longer than this many bytes are refused with `413`.
    pub value_limit: usize,
}

/// The store chosen at start-up.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// CockroachDB or PostgreSQL: a `postgres://` URL or a libpq
    /// `key=value` connection string.
    Postgres(String),
    /// A SQLite file, created if missing.
    Sqlite(PathBuf),
}

/// A setting that is present but cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.variable, self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
    }

    /// Reads settings through `lookup`, which returns a variable's value or
    /// `None` when it is unset; tests pass a map here.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let workers = parse(&lookup, "WORKERS")?.unwrap_or(16);
        Ok(Self {
            database: Database::from_lookup(&lookup),
            http_host: parse(&lookup, "HTTP_HOST")?.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            http_port: parse(&lookup, "HTTP_PORT")?.unwrap_or(8080),
            workers: at_least_one("WORKERS", workers)?,
            pool_size: match parse(&lookup, "DATABASE_POOL_SIZE")? {
                Some(size) => at_least_one("DATABASE_POOL_SIZE", size)?,
                None => u32::try_from(workers).unwrap_or(u32::MAX),
            },
            checkout_timeout: Duration::from_millis(
                parse(&lookup, "DATABASE_TIMEOUT_MS")?.unwrap_or(2_000),
            ),
            connect_timeout: Duration::from_secs(
                parse(&lookup, "CONNECT_TIMEOUT_SECS")?.unwrap_or(60),
            ),
            body_limit: parse(&lookup, "BODY_LIMIT_BYTES")?.unwrap_or(64 * 1024),
            value_limit: parse(&lookup, "VALUE_LIMIT_BYTES")?.unwrap_or(2_048),
        })
    }
}

impl Database {
    /// `DATABASE_URL` first, then the Go original's `PG*` variables when
    /// `PGHOST` is set, then the embedded SQLite file.
    fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Self {
        if let Some(url) = lookup("DATABASE_URL") {
            return Self::from_url(&url);
        }
        if lookup("PGHOST").is_some() {
            return Self::Postgres(conninfo_from_pg_variables(lookup));
        }
        Self::Sqlite(PathBuf::from(DEFAULT_SQLITE_PATH))
    }

    /// Tells a PostgreSQL URL or connection string from a SQLite path.
    pub fn from_url(url: &str) -> Self {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") || url.contains('=') {
            Self::Postgres(url.to_owned())
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            Self::Sqlite(PathBuf::from(path))
        }
    }

    /// The connection target with any password replaced, fit for a log.
    pub fn redacted(&self) -> String {
        match self {
            Self::Postgres(url) => redact_password(url),
            Self::Sqlite(path) => format!("sqlite file {}", path.display()),
        }
    }
}

// Only the redacted form may ever reach a log line or an error message.
impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn parse<T: std::str::FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: fmt::Display,
{
    lookup(variable)
        .map(|raw| {
            raw.trim().parse().map_err(|error| ConfigError {
                variable,
                reason: format!("is {raw:?}, which is not valid: {error}"),
            })
        })
        .transpose()
}

fn at_least_one<T: PartialOrd + From<u8>>(
    variable: &'static str,
    value: T,
) -> Result<T, ConfigError> {
    if value < T::from(1) {
        return Err(ConfigError {
            variable,
            reason: "must be at least 1".to_owned(),
        });
    }
    Ok(value)
}

/// Builds a libpq connection string from the variables the Go original
/// reads; variables left unset fall back to libpq's own defaults.
fn conninfo_from_pg_variables(lookup: &impl Fn(&str) -> Option<String>) -> String {
    let keywords = [
        ("PGHOST", "host"),
        ("PGPORT", "port"),
        ("PGDATABASE", "dbname"),
        ("PGUSER", "user"),
        ("PGPASSWORD", "password"),
        ("PGSSLMODE", "sslmode"),
    ];
    keywords
        .iter()
        .filter_map(|(variable, keyword)| {
            lookup(variable).map(|value| format!("{keyword}={}", quote_conninfo_value(&value)))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes a value the way libpq's connection strings expect, so that
/// spaces, quotes and backslashes in a password survive.
fn quote_conninfo_value(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
    format!("'{escaped}'")
}

fn redact_password(target: &str) -> String {
    if let Some((scheme, rest)) = target.split_once("://") {
        let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:***@{host}"),
                None => authority.to_owned(),
            },
            None => authority.to_owned(),
        };
        let tail = redact_password_parameter(tail, '&');
        return format!("{scheme}://{authority}{tail}");
    }
    redact_password_parameter(target, ' ')
}

/// Hides `password=...` in a URL's query or in a `key=value` string.
fn redact_password_parameter(text: &str, separator: char) -> String {
    let Some(start) = text.find("password=") else {
        return text.to_owned();
    };
    let value_start = start + "password=".len();
    let rest = &text[value_start..];
    let value_end = if rest.starts_with('\'') {
        // A quoted value ends at the first quote not escaped by a backslash.
        let mut escaped = false;
        rest.char_indices()
            .skip(1)
            .find(|&(_, c)| {
                let closes = c == '\'' && !escaped;
                escaped = c == '\\' && !escaped;
                closes
            })
            .map_or(rest.len(), |(index, _)| index + 1)
    } else {
        rest.find(separator).unwrap_or(rest.len())
    };
    format!("{}***{}", &text[..value_start], &rest[value_end..])
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config_from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let variables: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| variables.get(name).cloned())
    }

    #[test]
    fn nothing_set_gives_the_embedded_sqlite_default() {
        let config = config_from(&[]).unwrap();

        assert_eq!(
            config.database,
            Database::Sqlite(PathBuf::from(DEFAULT_SQLITE_PATH))
        );
        assert_eq!(config.http_port, 8080);
        assert_eq!(config.body_limit, 65_536);
        assert_eq!(config.value_limit, 2_048);
        assert_eq!(config.connect_timeout, Duration::from_secs(60));
        assert_eq!(config.pool_size as usize, config.workers);
    }

    #[test]
    fn database_url_wins_over_the_pg_variables() {
        let config = config_from(&[
            ("DATABASE_URL", "postgres://app@db:5432/app"),
            ("PGHOST", "elsewhere"),
        ])
        .unwrap();

        assert_eq!(
            config.database,
            Database::Postgres("postgres://app@db:5432/app".into())
        );
    }

    #[test]
    fn a_path_or_sqlite_url_selects_sqlite() {
        assert_eq!(
            Database::from_url("/var/lib/ping-roach/messages.db"),
            Database::Sqlite("/var/lib/ping-roach/messages.db".into())
        );
        assert_eq!(
            Database::from_url("sqlite://x.db"),
            Database::Sqlite("x.db".into())
        );
        assert_eq!(
            Database::from_url("postgresql://root@localhost:26257/defaultdb"),
            Database::Postgres("postgresql://root@localhost:26257/defaultdb".into())
        );
    }

    #[test]
    fn pg_variables_build_a_quoted_connection_string() {
        let config = config_from(&[
            ("PGHOST", "db"),
            ("PGPORT", "26257"),
            ("PGDATABASE", "mydb"),
            ("PGUSER", "totoro"),
            ("PGPASSWORD", "it's a \\secret"),
        ])
        .unwrap();

        assert_eq!(
            config.database,
            Database::Postgres(
                "host='db' port='26257' dbname='mydb' user='totoro' password='it\\'s a \\\\secret'"
                    .into()
            )
        );
    }

    #[test]
    fn passwords_never_show_in_the_redacted_form() {
        let cases = [
            (
                "postgres://app:hunter2@db:5432/app",
                "postgres://app:***@db:5432/app",
            ),
            (
                "postgres://app@db/app?password=hunter2&x=1",
                "postgres://app@db/app?password=***&x=1",
            ),
            (
                "host='db' password='hun\\'ter2' user='app'",
                "host='db' password=*** user='app'",
            ),
            (
                "host=db password=hunter2 user=app",
                "host=db password=*** user=app",
            ),
        ];
        for (target, expected) in cases {
            let redacted = Database::Postgres(target.into()).redacted();

            assert_eq!(redacted, expected);
            assert!(!redacted.contains("hunter2"));
        }
    }

    #[test]
    fn invalid_numbers_name_their_variable() {
        let error = config_from(&[("HTTP_PORT", "eighty")]).unwrap_err();

        assert_eq!(error.variable, "HTTP_PORT");
        assert!(
            error.to_string().starts_with("HTTP_PORT is \"eighty\""),
            "{error}"
        );
    }

    #[test]
    fn zero_workers_is_refused() {
        let error = config_from(&[("WORKERS", "0")]).unwrap_err();

        assert_eq!(error.to_string(), "WORKERS must be at least 1");
    }
}
