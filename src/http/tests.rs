//! The handler against a real SQLite store, one test per line of the
//! contract's tables, without a socket.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use tempfile::TempDir;

use super::*;
use crate::config::Config;

struct TestApp {
    app: App,
    directory: TempDir,
}

impl TestApp {
    fn new() -> Self {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("messages.sqlite3");
        let config = Config::from_lookup(|name| match name {
            "DATABASE_URL" => Some(path.to_str().unwrap().to_owned()),
            "CONNECT_TIMEOUT_SECS" => Some("5".to_owned()),
            "WORKERS" => Some("4".to_owned()),
            _ => None,
        })
        .unwrap();
        let store = Store::open(&config).unwrap();
        let limits = Limits {
            body: config.body_limit,
            value: config.value_limit,
        };
        Self {
            app: App { store, limits },
            directory,
        }
    }

    /// A connection of the test's own, beside the service's pool.
    fn sqlite(&self) -> SqliteConnection {
        let path = self.directory.path().join("messages.sqlite3");
        let mut connection = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        // The service's pool may still be opening connections.
        connection
            .batch_execute("PRAGMA busy_timeout = 5000")
            .unwrap();
        connection
    }

    fn stored_values(&self) -> Vec<String> {
        use crate::schema::message::dsl::*;
        message
            .select(value)
            .order(value)
            .load(&mut self.sqlite())
            .unwrap()
    }

    fn get(&self, url: &str) -> Response {
        handle(&self.app, Request::new("GET", url, io::empty()))
    }

    fn post_json(&self, body: &[u8]) -> Response {
        self.post("application/json", body)
    }

    fn post(&self, content_type: &str, body: &[u8]) -> Response {
        let mut request = Request::new("POST", "/send", body);
        request.content_type = Some(content_type.to_owned());
        request.content_length = Some(body.len() as u64);
        handle(&self.app, request)
    }
}

fn text(response: &Response) -> &str {
    std::str::from_utf8(&response.body).unwrap()
}

fn error_body(message: &str) -> String {
    format!("{{\"message\":\"{message}\"}}\n")
}

/// A body that fails the test if the handler reads from it.
struct UnreadableBody;

impl Read for UnreadableBody {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        panic!("the handler read a body it should have refused unread");
    }
}

#[test]
fn get_root_counts_distinct_messages_in_the_go_format() {
    let test = TestApp::new();

    let empty = test.get("/");
    for value in ["a", "b", "a"] {
        assert_eq!(
            test.post_json(format!("{{\"value\":\"{value}\"}}").as_bytes())
                .status,
            200
        );
    }
    let after = test.get("/");

    assert_eq!(empty.status, 200);
    assert_eq!(empty.content_type, "text/html; charset=utf-8");
    assert_eq!(text(&empty), "Hello, Docker! (0)\n");
    assert_eq!(text(&after), "Hello, Docker! (2)\n");
    assert_eq!(test.stored_values(), ["a", "b"]);
}

#[test]
fn head_and_query_strings_reach_the_same_routes() {
    let test = TestApp::new();

    let head = handle(&test.app, Request::new("HEAD", "/ping", io::empty()));
    let query = test.get("/?from=script");

    assert_eq!(head.status, 200);
    assert_eq!(text(&query), "Hello, Docker! (0)\n");
}

#[test]
fn ping_answers_without_touching_the_database() {
    let test = TestApp::new();
    test.sqlite()
        .batch_execute("DROP TABLE message_count")
        .unwrap();

    let ping = test.get("/ping");

    assert_eq!(ping.status, 200);
    assert_eq!(ping.content_type, "application/json");
    assert_eq!(text(&ping), "{\"Status\":\"OK\"}\n");
}

#[test]
fn send_echoes_the_value_escaped_as_the_go_original_does() {
    let test = TestApp::new();
    let value = "a<b>&c\"d\\e\nf\u{1}\u{8}\u{2028}é😀";

    let response =
        test.post_json(&serde_json::to_vec(&serde_json::json!({ "value": value })).unwrap());

    assert_eq!(response.status, 200);
    assert_eq!(response.content_type, "application/json");
    assert_eq!(
        text(&response),
        "{\"value\":\"a\\u003cb\\u003e\\u0026c\\\"d\\\\e\\nf\\u0001\\b\\u2028é😀\"}\n"
    );
    assert_eq!(test.stored_values(), [value]);
}

#[test]
fn a_value_sent_twice_is_stored_once() {
    let test = TestApp::new();

    let first = test.post_json(b"{\"value\": \"same\"}");
    let second = test.post_json(b"{\"value\": \"same\", \"ignored\": 1}");

    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(text(&second), "{\"value\":\"same\"}\n");
    assert_eq!(test.stored_values(), ["same"]);
    assert_eq!(text(&test.get("/")), "Hello, Docker! (1)\n");
}

#[test]
fn bad_bodies_are_400_with_a_reason_and_change_nothing() {
    let test = TestApp::new();
    assert_eq!(test.post_json(b"{\"value\":\"kept\"}").status, 200);
    let cases: [(&[u8], &str); 12] = [
        (
            b"",
            "the body is not valid JSON: EOF while parsing a value at line 1 column 0",
        ),
        (
            b"{\"value\": \"x\"",
            "the body is not valid JSON: EOF while parsing an object at line 1 column 13",
        ),
        (
            b"value=x",
            "the body is not valid JSON: expected value at line 1 column 1",
        ),
        (b"{\"value\": \"\xff\"}", "the body is not valid UTF-8"),
        (
            b"[\"x\"]",
            "the body must be a JSON object such as {\\\"value\\\": \\\"hello\\\"}",
        ),
        (
            b"\"x\"",
            "the body must be a JSON object such as {\\\"value\\\": \\\"hello\\\"}",
        ),
        (b"{}", "the body has no \\\"value\\\" field"),
        (b"{\"Value\": \"x\"}", "the body has no \\\"value\\\" field"),
        (b"{\"value\": null}", "\\\"value\\\" must be a string"),
        (b"{\"value\": 42}", "\\\"value\\\" must be a string"),
        (b"{\"value\": [\"x\"]}", "\\\"value\\\" must be a string"),
        (
            b"{\"value\": \"a\\u0000b\"}",
            "\\\"value\\\" must not contain NUL characters",
        ),
    ];

    for (body, message) in cases {
        let response = test.post_json(body);

        assert_eq!(response.status, 400, "{}", String::from_utf8_lossy(body));
        assert_eq!(response.content_type, "application/json");
        assert_eq!(text(&response), error_body(message));
    }
    assert_eq!(test.stored_values(), ["kept"]);
}

#[test]
fn deeply_nested_json_is_400_not_a_crash() {
    let test = TestApp::new();
    let body = format!(
        "{{\"value\": {}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );

    let response = test.post_json(body.as_bytes());

    assert_eq!(response.status, 400);
    assert!(
        text(&response).contains("recursion limit exceeded"),
        "{}",
        text(&response)
    );
}

#[test]
fn a_body_declared_too_large_is_413_without_being_read() {
    let test = TestApp::new();
    let mut request = Request::new("POST", "/send", UnreadableBody);
    request.content_type = Some("application/json".to_owned());
    request.content_length = Some(64 * 1024 + 1);

    let response = handle(&test.app, request);

    assert_eq!(response.status, 413);
    assert_eq!(
        text(&response),
        error_body("the body is larger than 65536 bytes")
    );
    assert_eq!(test.stored_values(), Vec::<String>::new());
}

#[test]
fn a_chunked_body_is_413_once_it_passes_the_limit() {
    let test = TestApp::new();
    let body = format!("{{\"value\": \"{}\"}}", "x".repeat(70_000));
    let mut request = Request::new("POST", "/send", body.as_bytes());
    request.content_type = Some("application/json".to_owned());
    request.chunked = true;

    let response = handle(&test.app, request);

    assert_eq!(response.status, 413);
    assert_eq!(test.stored_values(), Vec::<String>::new());
}

#[test]
fn values_are_limited_in_bytes_not_characters() {
    let test = TestApp::new();
    let at_limit = "é".repeat(1024);
    let over_limit = format!("{at_limit}x");

    let accepted = test.post_json(format!("{{\"value\":\"{at_limit}\"}}").as_bytes());
    let refused = test.post_json(format!("{{\"value\":\"{over_limit}\"}}").as_bytes());

    assert_eq!(accepted.status, 200);
    assert_eq!(refused.status, 413);
    assert_eq!(
        text(&refused),
        error_body("\\\"value\\\" is 2049 bytes long; at most 2048 are stored")
    );
    assert_eq!(test.stored_values(), [at_limit]);
}

#[test]
fn only_json_bodies_are_taken() {
    let test = TestApp::new();
    let body = b"{\"value\":\"x\"}";

    let plain = test.post("text/plain", body);
    let lookalike = test.post("application/jsonp", body);
    let missing = handle(&test.app, Request::new("POST", "/send", &body[..]));
    let with_charset = test.post("Application/JSON; charset=utf-8", b"{\"value\":\"y\"}");

    for refused in [&plain, &lookalike, &missing] {
        assert_eq!(refused.status, 415);
        assert_eq!(
            text(refused),
            error_body("the body must be sent as application/json")
        );
    }
    assert_eq!(with_charset.status, 200);
    assert_eq!(test.stored_values(), ["y"]);
}

#[test]
fn unknown_paths_are_404() {
    let test = TestApp::new();

    for url in ["/pong", "/send/", "//", "/ping/x"] {
        let response = test.get(url);

        assert_eq!(response.status, 404, "{url}");
        assert_eq!(text(&response), error_body("no such path"));
    }
}

#[test]
fn known_paths_with_the_wrong_method_are_405_with_allow() {
    let test = TestApp::new();

    let post_root = handle(&test.app, Request::new("POST", "/", io::empty()));
    let delete_ping = handle(&test.app, Request::new("DELETE", "/ping", io::empty()));
    let get_send = test.get("/send");

    assert_eq!(
        (post_root.status, post_root.allow),
        (405, Some("GET, HEAD"))
    );
    assert_eq!(
        (delete_ping.status, delete_ping.allow),
        (405, Some("GET, HEAD"))
    );
    assert_eq!((get_send.status, get_send.allow), (405, Some("POST")));
    assert_eq!(text(&get_send), error_body("this path takes only POST"));
}

#[test]
fn an_unexpected_database_error_is_a_terse_500() {
    let test = TestApp::new();
    test.sqlite()
        .batch_execute("DROP TABLE message_count")
        .unwrap();

    let response = test.get("/");

    assert_eq!(response.status, 500);
    assert_eq!(text(&response), error_body("internal error"));
}

#[test]
fn a_locked_database_is_503_within_seconds_and_then_recovers() {
    let test = TestApp::new();
    let mut blocker = test.sqlite();
    blocker.batch_execute("BEGIN EXCLUSIVE").unwrap();

    let started = Instant::now();
    let blocked = test.post_json(b"{\"value\":\"x\"}");
    let waited = started.elapsed();
    blocker.batch_execute("COMMIT").unwrap();
    let retried = test.post_json(b"{\"value\":\"x\"}");

    assert_eq!(blocked.status, 503);
    assert_eq!(
        text(&blocked),
        error_body("the database is unavailable; try again shortly")
    );
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    assert_eq!(retried.status, 200);
    assert_eq!(test.stored_values(), ["x"]);
}
