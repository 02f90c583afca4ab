//! Property tests of the handler against a real SQLite store: whatever
//! arrives, it does not panic, answers no 5xx while the store is healthy,
//! and changes stored data only when it answers `200`.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use ping_roach::config::Config;
use ping_roach::http::{App, Limits, Request, handle};
use ping_roach::store::Store;
use proptest::prelude::*;
use tempfile::TempDir;

struct Fixture {
    app: App,
    /// The test's own view of the file, beside the service's pool.
    connection: std::cell::RefCell<SqliteConnection>,
    _directory: TempDir,
}

impl Fixture {
    fn new() -> Self {
        let directory = tempfile::tempdir().unwrap();
        let path = directory
            .path()
            .join("messages.sqlite3")
            .to_str()
            .unwrap()
            .to_owned();
        let config = Config::from_lookup(|name| match name {
            "DATABASE_URL" => Some(path.clone()),
            "WORKERS" => Some("2".to_owned()),
            _ => None,
        })
        .unwrap();
        let store = Store::open(&config).unwrap();
        let limits = Limits {
            body: config.body_limit,
            value: config.value_limit,
        };
        let mut connection = SqliteConnection::establish(&path).unwrap();
        connection
            .batch_execute("PRAGMA busy_timeout = 5000")
            .unwrap();
        Self {
            app: App { store, limits },
            connection: connection.into(),
            _directory: directory,
        }
    }

    /// Every stored value, sorted, and the count the service keeps.
    fn stored(&self) -> (Vec<String>, i64) {
        use ping_roach::schema::message::dsl::*;
        let mut connection = self.connection.borrow_mut();
        let values = message
            .select(value)
            .order(value)
            .load(&mut *connection)
            .unwrap();
        (values, self.app.store.count_messages().unwrap())
    }
}

#[derive(Debug, Clone)]
struct Generated {
    method: String,
    url: String,
    content_type: Option<String>,
    declared_length: Option<u64>,
    chunked: bool,
    body: Vec<u8>,
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("POST".to_owned()),
        2 => Just("GET".to_owned()),
        1 => prop::sample::select(vec!["HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"])
            .prop_map(str::to_owned),
        1 => "[A-Za-z]{1,12}",
    ]
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("/send".to_owned()),
        1 => Just("/".to_owned()),
        1 => Just("/ping".to_owned()),
        1 => "/(send|ping)?\\?[ -~]{0,20}",
        1 => "/[ -~]{0,30}",
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(Some("application/json".to_owned())),
        1 => Just(Some("application/json; charset=utf-8".to_owned())),
        1 => Just(None),
        1 => "[ -~]{0,40}".prop_map(Some),
    ]
}

/// JSON of any shape, strings included, with `value` most of the time.
fn json_body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
        ".{0,3000}".prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    });
    (value, prop::option::of("[a-z]{1,6}")).prop_map(|(value, extra)| {
        let mut object = serde_json::Map::new();
        object.insert("value".to_owned(), value);
        if let Some(key) = extra {
            object.insert(key, serde_json::Value::Null);
        }
        serde_json::to_vec(&object).unwrap()
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => json_body(),
        2 => "\\{\"value\": \"[^\"\\\\]{0,40}\"\\}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..3000),
        1 => (1..200usize)
            .prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
        1 => (1..5000usize).prop_map(|depth| "{\"value\":".repeat(depth).into_bytes()),
    ]
}

fn request() -> impl Strategy<Value = Generated> {
    (
        method(),
        url(),
        content_type(),
        body(),
        0..4u8,
        any::<u64>(),
    )
        .prop_map(|(method, url, content_type, body, framing, huge)| {
            // As on the wire: a true length, a length past any limit whose
            // body never comes, chunks, or no length at all.
            let (declared_length, chunked) = match framing {
                0 => (Some(body.len() as u64), false),
                1 => (Some(huge.max(64 * 1024 + 1)), false),
                2 => (None, true),
                _ => (None, false),
            };
            let body = if framing == 3 { Vec::new() } else { body };
            Generated {
                method,
                url,
                content_type,
                declared_length,
                chunked,
                body,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_request_gets_an_answer_below_500_and_only_200_changes_data(
        requests in prop::collection::vec(request(), 1..4)
    ) {
        let fixture = Fixture::new();
        for generated in requests {
            let before = fixture.stored();
            let request = Request {
                method: generated.method.clone(),
                url: generated.url.clone(),
                content_type: generated.content_type.clone(),
                content_length: generated.declared_length,
                chunked: generated.chunked,
                body: generated.body.as_slice(),
            };

            let response = handle(&fixture.app, request);

            let after = fixture.stored();
            prop_assert!(response.status < 500, "{} for {:?}", response.status, generated);
            prop_assert!(response.body.ends_with(b"\n"));
            if response.status != 200 || generated.method != "POST" {
                prop_assert_eq!(&after, &before, "{} changed data", response.status);
            } else {
                let echoed: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
                let value = echoed["value"].as_str().unwrap().to_owned();
                prop_assert!(after.0.binary_search(&value).is_ok());
                let added = after.0.len() - before.0.len();
                prop_assert!(added <= 1);
                prop_assert_eq!(after.1, after.0.len() as i64, "the count is exact");
            }
        }
    }
}
