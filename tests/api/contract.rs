//! The contract's endpoints and errors, over real HTTP.

use std::time::{Duration, Instant};

use crate::support::{Client, ServiceBuilder, TestDatabase, send_body};

#[test]
fn the_guides_transcript_gives_the_go_originals_bytes_on_postgres() {
    let database = TestDatabase::create();
    let service = ServiceBuilder::new(database.url()).start();

    assert_guide_transcript(&service);
    assert_eq!(database.values(), ["Hello, Oliver!", "Hello, Yuri!"]);
}

#[test]
fn the_guides_transcript_gives_the_go_originals_bytes_on_sqlite() {
    let builder = ServiceBuilder::without_database();
    let service = builder.start();

    assert_guide_transcript(&service);
    let log = service.log_text();
    assert!(
        log.contains("store: SQLite file data/ping-roach.sqlite3"),
        "the embedded default names its file:\n{log}"
    );
    assert!(builder.directory().join("data/ping-roach.sqlite3").exists());
}

fn assert_guide_transcript(service: &crate::support::Service) {
    let mut client = service.client();

    let empty = client.get("/").unwrap();
    let sent = client
        .post_json("/send", "{\"value\": \"Hello, Oliver!\"}")
        .unwrap();
    let again = client
        .post_json("/send", "{\"value\": \"Hello, Oliver!\"}")
        .unwrap();
    let other = client
        .post_json("/send", "{\"value\": \"Hello, Yuri!\"}")
        .unwrap();
    let count = client.get("/").unwrap();
    let ping = client.get("/ping").unwrap();

    assert_eq!((empty.status, empty.text()), (200, "Hello, Docker! (0)\n"));
    assert_eq!(
        empty.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        (sent.status, sent.text()),
        (200, "{\"value\":\"Hello, Oliver!\"}\n")
    );
    assert_eq!(sent.header("Content-Type"), Some("application/json"));
    assert_eq!((again.status, other.status), (200, 200));
    assert_eq!(count.text(), "Hello, Docker! (2)\n");
    assert_eq!((ping.status, ping.text()), (200, "{\"Status\":\"OK\"}\n"));
    assert_eq!(ping.header("Content-Type"), Some("application/json"));
}

#[test]
fn messages_survive_a_restart() {
    let database = TestDatabase::create();

    assert_messages_survive_a_restart(&ServiceBuilder::new(database.url()));
}

#[test]
fn sqlite_messages_survive_a_restart() {
    assert_messages_survive_a_restart(&ServiceBuilder::without_database());
}

fn assert_messages_survive_a_restart(builder: &ServiceBuilder) {
    let mut first = builder.start();
    first.post_json(&send_body("kept"));
    first.signal("TERM");
    let stopped = first.wait_for_exit(Duration::from_secs(5));
    assert!(stopped.is_some_and(|status| status.success()));

    let second = builder.start();

    assert_eq!(second.get("/").text(), "Hello, Docker! (1)\n");
}

#[test]
fn the_go_originals_pg_variables_alone_configure_the_store() {
    let database = TestDatabase::create();
    let url = url::Parts::of(database.url());
    let mut builder = ServiceBuilder::without_database()
        .env("PGHOST", &url.host)
        .env("PGPORT", &url.port)
        .env("PGDATABASE", &url.database)
        .env("PGUSER", &url.user)
        // The test server trusts local connections, so any password will do;
        // the point is that none reaches the log.
        .env("PGPASSWORD", "not-for-the-log");
    if let Some(sslmode) = &url.sslmode {
        builder = builder.env("PGSSLMODE", sslmode);
    }

    let service = builder.start();
    service.post_json(&send_body("via PG variables"));

    assert_eq!(database.values(), ["via PG variables"]);
    let log = service.log_text();
    assert!(
        log.contains(&format!("store: host='{}'", url.host)),
        "{log}"
    );
    assert!(
        !log.contains("not-for-the-log"),
        "the password reached the log:\n{log}"
    );
}

#[test]
fn a_password_in_database_url_never_reaches_the_log() {
    let database = TestDatabase::create();
    let url = url::Parts::of(database.url());
    let with_password = format!(
        "postgres://{}:hunter2@{}:{}/{}{}",
        url.user,
        url.host,
        url.port,
        url.database,
        url.sslmode
            .map(|mode| format!("?sslmode={mode}"))
            .unwrap_or_default()
    );

    let service = ServiceBuilder::new(&with_password).start();
    service.get("/");

    let log = service.log_text();
    assert!(log.contains(&format!("{}:***@", url.user)), "{log}");
    assert!(
        !log.contains("hunter2"),
        "the password reached the log:\n{log}"
    );
}

#[test]
fn bad_input_gets_its_status_and_changes_nothing() {
    let database = TestDatabase::create();
    let service = ServiceBuilder::new(database.url()).start();
    service.post_json(&send_body("kept"));
    let mut client = service.client();

    let cases: Vec<(u16, &str, &[u8])> = vec![
        (400, "application/json", b"{\"value\": \"\xff\xfe\"}"),
        (400, "application/json", b"not json"),
        (400, "application/json", b"{}"),
        (400, "application/json", b"{\"value\": 7}"),
        (400, "application/json", b"{\"value\": \"nul\\u0000\"}"),
        (400, "application/json", b""),
        (
            413,
            "application/json",
            format!("{{\"value\":\"{}\"}}", "v".repeat(2049))
                .leak()
                .as_bytes(),
        ),
        (415, "text/plain", b"{\"value\": \"x\"}"),
        (415, "application/x-www-form-urlencoded", b"value=x"),
    ];
    for (status, content_type, body) in cases {
        let response = client.post("/send", content_type, body).unwrap();

        assert_eq!(response.status, status, "{}", String::from_utf8_lossy(body));
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        assert!(
            response.text().starts_with("{\"message\":\""),
            "{}",
            response.text()
        );
    }
    assert_eq!(database.values(), ["kept"]);
    assert_eq!(service.get("/").text(), "Hello, Docker! (1)\n");
}

#[test]
fn routing_errors_are_404_and_405_with_allow() {
    let service = ServiceBuilder::without_database().start();
    let mut client = service.client();

    let missing = client.get("/nowhere").unwrap();
    let get_send = client.get("/send").unwrap();
    let post_ping = client.post_json("/ping", "{}").unwrap();

    assert_eq!(
        (missing.status, missing.text()),
        (404, "{\"message\":\"no such path\"}\n")
    );
    assert_eq!(
        (get_send.status, get_send.header("Allow")),
        (405, Some("POST"))
    );
    assert_eq!(
        (post_ping.status, post_ping.header("Allow")),
        (405, Some("GET, HEAD"))
    );
}

#[test]
fn a_huge_declared_body_is_refused_before_it_is_sent() {
    let database = TestDatabase::create();
    let service = ServiceBuilder::new(database.url()).start();
    let mut client = service.client();

    // Headers only: the 20 MB body never follows, so only an answer given
    // without reading it can arrive.
    let started = Instant::now();
    client
        .send_raw(
            b"POST /send HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
              Content-Length: 20000000\r\n\r\n{\"value\":\"",
        )
        .unwrap();
    let response = client.read_response().unwrap();

    assert_eq!(response.status, 413);
    assert_eq!(
        response.text(),
        "{\"message\":\"the body is larger than 65536 bytes\"}\n"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(database.message_rows(), 0);
}

#[test]
fn a_client_expecting_100_continue_gets_413_instead() {
    let service = ServiceBuilder::without_database().start();
    let mut client = service.client();

    client
        .send_raw(
            b"POST /send HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
              Content-Length: 20000000\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let response = client.read_response().unwrap();

    assert_eq!(response.status, 413);
}

#[test]
fn a_chunked_body_within_the_limit_is_taken() {
    let service = ServiceBuilder::without_database().start();
    let mut client = service.client();
    let body = send_body("chunked");

    client
        .send_raw(
            format!(
                "POST /send HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
                 Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    let response = client.read_response().unwrap();

    assert_eq!(
        (response.status, response.text()),
        (200, "{\"value\":\"chunked\"}\n")
    );
}

#[test]
fn a_body_over_one_kilobyte_is_read_and_stored() {
    let database = TestDatabase::create();
    let service = ServiceBuilder::new(database.url()).start();
    let value = "k".repeat(2_000);

    let response = service.post_json(&send_body(&value));

    assert_eq!(response.status, 200);
    assert_eq!(database.values(), [value]);
}

#[test]
fn a_table_the_go_original_filled_is_taken_over_and_counted() {
    let database = TestDatabase::create();
    // The Go original's schema and rows, as it leaves them.
    database.execute(
        "CREATE TABLE IF NOT EXISTS message (value TEXT PRIMARY KEY);
         INSERT INTO message (value) VALUES ('Hello, Oliver!'), ('Hello, Yuri!'), ('third');",
    );

    let service = ServiceBuilder::new(database.url()).start();
    let before = service.get("/");
    service.post_json(&send_body("Hello, Yuri!"));
    service.post_json(&send_body("fourth"));
    let after = service.get("/");

    assert_eq!(before.text(), "Hello, Docker! (3)\n");
    assert_eq!(after.text(), "Hello, Docker! (4)\n");
    assert_eq!(database.message_rows(), 4);
}

#[test]
fn every_request_gets_one_log_line_with_method_path_status_and_latency() {
    let service = ServiceBuilder::without_database().start();

    service.get("/ping?secret=query");
    service.get("/missing");

    let line = service
        .wait_for_log("GET /ping 200", Duration::from_secs(5))
        .unwrap();
    assert!(line.trim_end().ends_with("ms"), "{line}");
    assert!(
        !service.log_text().contains("secret=query"),
        "queries stay out of the log"
    );
    assert!(
        service
            .wait_for_log("GET /missing 404", Duration::from_secs(5))
            .is_some()
    );
}

#[test]
fn connections_are_kept_alive_between_requests() {
    let service = ServiceBuilder::without_database().start();
    let mut client: Client = service.client();

    for _ in 0..50 {
        assert_eq!(client.get("/ping").unwrap().status, 200);
    }
}

/// The parts of a `postgres://` URL the `PG*` variables carry.
mod url {
    pub struct Parts {
        pub host: String,
        pub port: String,
        pub database: String,
        pub user: String,
        pub sslmode: Option<String>,
    }

    impl Parts {
        pub fn of(url: &str) -> Self {
            let rest = url.split_once("://").unwrap().1;
            let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
            let (user, host_port) = authority
                .rsplit_once('@')
                .unwrap_or(("postgres", authority));
            let user = user.split(':').next().unwrap().to_owned();
            let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "5432"));
            let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
            let sslmode = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("sslmode="))
                .map(str::to_owned);
            Self {
                host: host.to_owned(),
                port: port.to_owned(),
                database: path.trim_start_matches('/').to_owned(),
                user,
                sslmode,
            }
        }
    }
}
