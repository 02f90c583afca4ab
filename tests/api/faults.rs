//! The database going away and coming back, and failing in unexpected
//! ways, while the service runs.

use std::time::{Duration, Instant};

use std::thread;

use crate::support::{
    Proxy, ServiceBuilder, TestDatabase, WriteLoad, eventually, lost_writes, send_body,
};

const UNAVAILABLE: &str = "{\"message\":\"the database is unavailable; try again shortly\"}\n";

#[test]
fn a_lost_database_gives_503_within_seconds_and_the_service_recovers_by_itself() {
    let database = TestDatabase::create();
    let proxy = Proxy::start(database.server_address());
    let service = ServiceBuilder::new(&database.url_via(proxy.address())).start();
    assert_eq!(service.post_json(&send_body("before")).status, 200);

    proxy.cut();
    let started = Instant::now();
    let count = service.get("/");
    let count_took = started.elapsed();
    let write = service.post_json(&send_body("during"));
    let ping = service.get("/ping");

    assert_eq!((count.status, count.text()), (503, UNAVAILABLE));
    assert!(
        count_took < Duration::from_secs(5),
        "503 took {count_took:?}"
    );
    assert_eq!((write.status, write.text()), (503, UNAVAILABLE));
    assert_eq!(ping.status, 200);

    proxy.restore();
    let restored = Instant::now();
    let recovered = eventually(Duration::from_secs(15), || service.get("/").status == 200);
    eprintln!(
        "recovered {:?} after the database came back",
        restored.elapsed()
    );

    assert!(recovered, "no recovery; log:\n{}", service.log_text());
    assert_eq!(service.get("/").text(), "Hello, Docker! (1)\n");
    assert_eq!(service.post_json(&send_body("after")).status, 200);
    assert_eq!(database.values(), ["after", "before"]);
}

#[test]
fn an_unexpected_database_error_is_500_with_the_cause_in_the_log_only() {
    let database = TestDatabase::create();
    let service = ServiceBuilder::new(database.url()).start();
    database.execute("DROP TABLE message_count");

    let response = service.get("/");

    assert_eq!(
        (response.status, response.text()),
        (500, "{\"message\":\"internal error\"}\n")
    );
    let line = service
        .wait_for_log("GET / failed", Duration::from_secs(5))
        .unwrap();
    assert!(
        line.contains("message_count"),
        "the log names the cause: {line}"
    );
    assert_eq!(service.get("/ping").status, 200);
}

#[test]
fn acknowledged_writes_survive_a_database_outage_under_load() {
    let database = TestDatabase::create();
    let proxy = Proxy::start(database.server_address());
    let service = ServiceBuilder::new(&database.url_via(proxy.address())).start();
    let load = WriteLoad::start(service.address(), 8);
    thread::sleep(Duration::from_millis(800));

    proxy.cut();
    thread::sleep(Duration::from_secs(2));
    let during_outage = load.acknowledged_count();
    proxy.restore();
    let recovered = eventually(Duration::from_secs(15), || {
        load.acknowledged_count() > during_outage + 50
    });
    let acknowledged = load.stop();

    assert!(
        recovered,
        "writes did not resume; log:\n{}",
        service.log_text()
    );
    assert_eq!(
        lost_writes(&acknowledged, &database.values()),
        Vec::<&String>::new()
    );
    assert_eq!(
        service.get("/").text(),
        format!("Hello, Docker! ({})\n", database.message_rows())
    );
}

#[test]
fn a_killed_service_loses_no_acknowledged_write_and_counts_right_after_a_restart() {
    let database = TestDatabase::create();
    let builder = ServiceBuilder::new(database.url());
    let mut service = builder.start();
    let load = WriteLoad::start(service.address(), 8);
    thread::sleep(Duration::from_millis(800));

    service.signal("KILL");
    service
        .wait_for_exit(Duration::from_secs(5))
        .expect("the service died");
    let acknowledged = load.stop();
    let restarted = builder.start();

    assert!(
        acknowledged.len() > 50,
        "the load was real: {} writes",
        acknowledged.len()
    );
    assert_eq!(
        lost_writes(&acknowledged, &database.values()),
        Vec::<&String>::new()
    );
    assert_eq!(
        restarted.get("/").text(),
        format!("Hello, Docker! ({})\n", database.message_rows())
    );
}

#[test]
fn a_write_blocked_by_a_lock_is_503_within_seconds() {
    use diesel::prelude::*;

    let database = TestDatabase::create();
    let service = ServiceBuilder::new(database.url()).start();
    let mut blocker = database.connect();

    let (response, took) = blocker
        .transaction(|blocker| {
            // Every shard of the count locked by another session, as by an
            // operator's long transaction.
            diesel::sql_query("SELECT shard FROM message_count FOR UPDATE").execute(blocker)?;
            let started = Instant::now();
            let response = service.post_json(&send_body("blocked"));
            diesel::QueryResult::Ok((response, started.elapsed()))
        })
        .unwrap();

    assert_eq!((response.status, response.text()), (503, UNAVAILABLE));
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    assert_eq!(service.post_json(&send_body("free again")).status, 200);
    assert_eq!(database.values(), ["free again"]);
}
