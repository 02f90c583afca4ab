//! Many clients at once: the count stays exact and conflicts stay hidden.

use std::collections::BTreeSet;
use std::thread;

use crate::support::{Isolation, Service, ServiceBuilder, TestDatabase, send_body};

/// Has `clients` clients post `value(client, i)` for `i` in `0..per_client`
/// at once, each over its own keep-alive connection, and returns every
/// status with the set of values sent.
fn post_concurrently(
    service: &Service,
    clients: usize,
    per_client: usize,
    value: impl Fn(usize, usize) -> String + Sync,
) -> (Vec<u16>, BTreeSet<String>) {
    let value = &value;
    let statuses = thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|client| {
                scope.spawn(move || {
                    let mut connection = service.client();
                    (0..per_client)
                        .map(|i| {
                            connection
                                .post_json("/send", &send_body(&value(client, i)))
                                .unwrap()
                                .status
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap())
            .collect()
    });
    let sent = (0..clients)
        .flat_map(|c| (0..per_client).map(move |i| value(c, i)))
        .collect();
    (statuses, sent)
}

fn overlapping(client: usize, i: usize) -> String {
    format!("value-{}", (client * 7 + i) % 120)
}

fn assert_all_ok(statuses: &[u16], service: &Service) {
    let failed = statuses.iter().filter(|status| **status != 200).count();
    let errors: Vec<_> = service
        .log_text()
        .lines()
        .filter(|l| l.contains("ERROR"))
        .take(3)
        .map(str::to_owned)
        .collect();
    assert_eq!(
        failed,
        0,
        "{failed} of {} writes failed; first errors: {errors:#?}",
        statuses.len()
    );
}

fn count_of(service: &Service) -> String {
    service.get("/").text().to_owned()
}

fn hello(count: usize) -> String {
    format!("Hello, Docker! ({count})\n")
}

#[test]
fn thirty_two_clients_with_overlapping_values_leave_an_exact_count() {
    let database = TestDatabase::create();

    assert_overlapping_writers_leave_an_exact_count(&database, database.url());
}

#[test]
fn overlapping_writers_at_read_committed_keep_the_count_exact() {
    let database = TestDatabase::create();

    assert_overlapping_writers_leave_an_exact_count(
        &database,
        &database.url_with(Isolation::ReadCommitted),
    );
}

fn assert_overlapping_writers_leave_an_exact_count(database: &TestDatabase, url: &str) {
    let service = ServiceBuilder::new(url).start();

    let (statuses, sent) = post_concurrently(&service, 32, 25, overlapping);

    assert_all_ok(&statuses, &service);
    assert_eq!(count_of(&service), hello(sent.len()));
    assert_eq!(database.message_rows(), sent.len() as i64);
}

#[test]
fn a_hot_key_at_serializable_answers_every_write_with_200() {
    let database = TestDatabase::create();
    let service = ServiceBuilder::new(&database.url_with(Isolation::Serializable))
        .env("RUST_LOG", "info,ping_roach::store=debug")
        .start();

    // Every client alternates the one hot value with values of its own, so
    // that writers collide both on the hot key and on the count's shards.
    let (statuses, sent) = post_concurrently(&service, 32, 20, |client, i| {
        if i % 2 == 0 {
            "hot".to_owned()
        } else {
            format!("own-{client}-{i}")
        }
    });

    assert_all_ok(&statuses, &service);
    assert_eq!(count_of(&service), hello(sent.len()));
    assert_eq!(database.message_rows(), sent.len() as i64);
    assert!(
        service.log_text().contains("retrying in"),
        "no write conflict happened, so the test proved nothing"
    );
}

#[test]
fn concurrent_writers_on_sqlite_keep_the_count_exact() {
    let service = ServiceBuilder::without_database().start();

    let (statuses, sent) = post_concurrently(&service, 32, 10, overlapping);

    assert_all_ok(&statuses, &service);
    assert_eq!(count_of(&service), hello(sent.len()));
}
