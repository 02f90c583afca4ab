//! The service under test: the real binary in a child process, with its
//! log collected so that tests can wait for lines and read them.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::client::{Client, HttpResponse};

/// How to start the service.
pub struct ServiceBuilder {
    variables: Vec<(String, String)>,
    directory: Arc<tempfile::TempDir>,
}

/// A running service; killed when dropped.
pub struct Service {
    child: Child,
    /// Kept until the service is gone, since its SQLite file may be there.
    _directory: Arc<tempfile::TempDir>,
    log: Arc<Log>,
    address: Option<SocketAddr>,
}

#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

impl ServiceBuilder {
    /// A service on `database_url`, on a free loopback port, in an empty
    /// working directory (so that no `.env` of the developer's applies).
    pub fn new(database_url: &str) -> Self {
        Self::without_database().env("DATABASE_URL", database_url)
    }

    /// A service with no database settings: the embedded default, or
    /// whatever [`ServiceBuilder::env`] adds.
    pub fn without_database() -> Self {
        let builder = Self {
            variables: Vec::new(),
            directory: Arc::new(tempfile::tempdir().unwrap()),
        };
        builder
            .env("HTTP_HOST", "127.0.0.1")
            .env("HTTP_PORT", "0")
            .env("RUST_LOG", "info")
            .env("CONNECT_TIMEOUT_SECS", "30")
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.variables.retain(|(existing, _)| existing != name);
        self.variables.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The working directory the service runs in.
    pub fn directory(&self) -> PathBuf {
        self.directory.path().to_owned()
    }

    /// Starts the service without waiting for it.
    pub fn spawn(&self) -> Service {
        // Made absolute: the service runs in a directory of its own, where a
        // relative path would not resolve.
        let binary = std::env::var("PING_ROACH_BIN")
            .map(|path| std::fs::canonicalize(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_BIN_EXE_ping-roach")));
        let mut child = Command::new(&binary)
            .env_clear()
            .envs(self.variables.iter().map(|(k, v)| (k, v)))
            .current_dir(self.directory.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let log = Arc::new(Log::default());
        let stderr = child.stderr.take().unwrap();
        let collecting = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                collecting.lines.lock().unwrap().push(line);
                collecting.grew.notify_all();
            }
        });
        Service {
            child,
            _directory: Arc::clone(&self.directory),
            log,
            address: None,
        }
    }

    /// Starts the service and waits until it listens.
    pub fn start(&self) -> Service {
        let mut service = self.spawn();
        service.wait_until_listening(Duration::from_secs(30));
        service
    }
}

impl Service {
    /// Waits for the "listening on" line and returns the address in it.
    pub fn wait_until_listening(&mut self, timeout: Duration) -> SocketAddr {
        let line = self
            .wait_for_log("listening on http://", timeout)
            .unwrap_or_else(|| panic!("the service did not start; its log:\n{}", self.log_text()));
        let address = line
            .split("http://")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        let address = address.parse().unwrap();
        self.address = Some(address);
        address
    }

    /// The first log line containing `needle`, waiting up to `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = self.log.lines.lock().unwrap();
        loop {
            if let Some(line) = lines.iter().find(|line| line.contains(needle)) {
                return Some(line.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            lines = self.log.grew.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// Everything logged so far.
    pub fn log_text(&self) -> String {
        self.log.lines.lock().unwrap().join("\n")
    }

    pub fn address(&self) -> SocketAddr {
        self.address.expect("the service is listening")
    }

    pub fn client(&self) -> Client {
        Client::connect(self.address()).unwrap()
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        self.client().get(path).unwrap()
    }

    pub fn post_json(&self, body: &str) -> HttpResponse {
        self.client().post_json("/send", body).unwrap()
    }

    /// Sends `signal` (such as `TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // Already gone is fine; the goal is only that no service outlives
        // its test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
