//! The command line: which command to run, and running it.

use std::error::Error;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use log::info;

use crate::config::{Config, Database};
use crate::error::chain;
use crate::http::{self, App, Limits};
use crate::server::{Server, StopHandle};
use crate::store::Store;

pub const USAGE: &str = "\
ping-roach: counts the messages it is sent, stored in CockroachDB,
PostgreSQL or SQLite.

Usage: ping-roach [COMMAND]

Commands:
  serve        Connect to the database, migrate it and serve HTTP (default)
  healthcheck  Exit 0 if the service on HTTP_PORT answers GET /ping
  recount      Rebuild the message count after writes made without the service

Options:
  -h, --help     Print this help
  -V, --version  Print the version

Settings come from the environment and from a .env file in the working
directory; the README lists them all.";

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Serve,
    Healthcheck,
    Recount,
    Help,
    Version,
}

impl Command {
    /// Parses the arguments after the program's name.
    pub fn parse(mut arguments: impl Iterator<Item = String>) -> Result<Self, String> {
        let command = match arguments.next().as_deref() {
            None | Some("serve") => Self::Serve,
            Some("healthcheck") => Self::Healthcheck,
            Some("recount") => Self::Recount,
            Some("-h" | "--help" | "help") => Self::Help,
            Some("-V" | "--version") => Self::Version,
            Some(other) => return Err(format!("unknown command {other:?}")),
        };
        match arguments.next() {
            Some(extra) => Err(format!("unexpected argument {extra:?}")),
            None => Ok(command),
        }
    }

    /// Runs the command to its end.
    pub fn run(self) -> Result<(), Box<dyn Error>> {
        match self {
            Self::Help => println!("{USAGE}"),
            Self::Version => println!("ping-roach {}", env!("CARGO_PKG_VERSION")),
            Self::Serve => serve(Config::from_env()?)?,
            Self::Healthcheck => healthcheck(Config::from_env()?.http_port)?,
            Self::Recount => {
                // One statement needs one connection, not a warm pool.
                let config = Config {
                    pool_size: 1,
                    ..Config::from_env()?
                };
                let count = open_store(&config)?.recount()?;
                println!("{count} messages");
            }
        }
        Ok(())
    }
}

/// Opens the store, migrates it, and serves until `SIGTERM` or `SIGINT`.
pub fn serve(config: Config) -> Result<(), Box<dyn Error>> {
    let store = open_store(&config)?;
    let server = Server::bind(
        SocketAddr::new(config.http_host, config.http_port),
        config.workers,
    )?;
    stop_on_signals(server.stop_handle())?;
    info!(
        "listening on http://{} with {} workers",
        server.local_addr(),
        config.workers
    );

    let app = App {
        store,
        limits: Limits {
            body: config.body_limit,
            value: config.value_limit,
        },
    };
    server.run(Arc::new(move |request| http::handle(&app, request)))?;
    info!("stopped");
    Ok(())
}

fn open_store(config: &Config) -> Result<Store, String> {
    match &config.database {
        Database::Sqlite(path) => info!(
            "store: SQLite file {} (set DATABASE_URL or PGHOST for CockroachDB or PostgreSQL)",
            path.display()
        ),
        Database::Postgres(_) => info!("store: {}", config.database.redacted()),
    }
    Store::open(config).map_err(|error| {
        format!(
            "gave up on the database after {}s: {}",
            config.connect_timeout.as_secs(),
            chain(&error)
        )
    })
}

/// Stops the server gracefully on the first `SIGTERM` or `SIGINT`, and
/// exits at once on a second one.
fn stop_on_signals(stop: StopHandle) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};

    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            let mut received = signals.forever();
            if let Some(signal) = received.next() {
                info!("received signal {signal}, stopping");
                stop.stop();
            }
            if received.next().is_some() {
                std::process::exit(1);
            }
        })?;
    Ok(())
}

/// Succeeds if `GET /ping` on the local port answers `200`; the container
/// image has no shell or curl to do this.
fn healthcheck(port: u16) -> Result<(), Box<dyn Error>> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut status_line = [0; 12];
    stream.read_exact(&mut status_line)?;
    if &status_line[8..] != b" 200" {
        return Err(format!(
            "GET /ping answered {}",
            String::from_utf8_lossy(&status_line)
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(arguments: &[&str]) -> Result<Command, String> {
        Command::parse(arguments.iter().map(|a| a.to_string()))
    }

    #[test]
    fn no_command_means_serve() {
        assert_eq!(parse(&[]), Ok(Command::Serve));
        assert_eq!(parse(&["healthcheck"]), Ok(Command::Healthcheck));
        assert_eq!(parse(&["--version"]), Ok(Command::Version));
    }

    #[test]
    fn unknown_commands_and_extra_arguments_are_refused() {
        assert_eq!(parse(&["serv"]), Err("unknown command \"serv\"".to_owned()));
        assert_eq!(
            parse(&["recount", "now"]),
            Err("unexpected argument \"now\"".to_owned())
        );
    }
}
