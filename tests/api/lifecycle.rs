//! Start-up, replicas, signals and unfriendly clients.

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{
    Client, Proxy, ServiceBuilder, TestDatabase, WriteLoad, lost_writes, send_body,
};

#[test]
fn start_up_waits_for_the_database_and_serves_soon_after_it_appears() {
    let database = TestDatabase::create();
    let proxy = Proxy::start(database.server_address());
    proxy.cut();
    let mut service = ServiceBuilder::new(&database.url_via(proxy.address())).spawn();
    let retrying = service.wait_for_log("next attempt in", Duration::from_secs(10));
    assert!(
        retrying.is_some(),
        "each failed attempt is logged:\n{}",
        service.log_text()
    );
    thread::sleep(Duration::from_secs(2));

    proxy.restore();
    let restored = Instant::now();
    service.wait_until_listening(Duration::from_secs(10));
    eprintln!(
        "serving {:?} after the database appeared",
        restored.elapsed()
    );

    assert!(
        restored.elapsed() < Duration::from_secs(7),
        "backoff delays are capped at 5 s"
    );
    assert_eq!(service.get("/").text(), "Hello, Docker! (0)\n");
}

#[test]
fn start_up_gives_up_after_the_connect_timeout_with_one_clear_line() {
    let database = TestDatabase::create();
    let proxy = Proxy::start(database.server_address());
    proxy.cut();
    let mut service = ServiceBuilder::new(&database.url_via(proxy.address()))
        .env("CONNECT_TIMEOUT_SECS", "2")
        .spawn();

    let status = service
        .wait_for_exit(Duration::from_secs(15))
        .expect("the service exits");

    assert!(!status.success());
    let log = service.log_text();
    let last = log.lines().last().unwrap();
    assert!(last.contains("ERROR"), "{last}");
    assert!(
        last.contains("gave up on the database after 2s: could not connect"),
        "{last}"
    );
}

#[test]
fn replicas_starting_together_on_an_empty_database_all_serve() {
    let database = TestDatabase::create();
    let builder = ServiceBuilder::new(database.url());

    let mut replicas: Vec<_> = (0..3).map(|_| builder.spawn()).collect();
    for replica in &mut replicas {
        replica.wait_until_listening(Duration::from_secs(30));
    }
    for (index, replica) in replicas.iter().enumerate() {
        replica.post_json(&send_body(&format!("from replica {index}")));
    }

    for replica in &replicas {
        assert_eq!(replica.get("/").text(), "Hello, Docker! (3)\n");
    }
}

#[test]
fn sigterm_under_write_load_keeps_every_acknowledged_write_and_exits_0() {
    let database = TestDatabase::create();
    let mut service = ServiceBuilder::new(database.url()).start();
    let load = WriteLoad::start(service.address(), 8);
    thread::sleep(Duration::from_millis(700));

    service.signal("TERM");
    let signalled = Instant::now();
    let status = service.wait_for_exit(Duration::from_secs(10));
    let stopped_after = signalled.elapsed();
    let acknowledged = load.stop();
    eprintln!("stopped {stopped_after:?} after SIGTERM");

    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "log:\n{}",
        service.log_text()
    );
    assert!(
        stopped_after < Duration::from_secs(3),
        "took {stopped_after:?}"
    );
    assert!(
        acknowledged.len() > 50,
        "the load was real: {} writes",
        acknowledged.len()
    );
    assert_eq!(
        lost_writes(&acknowledged, &database.values()),
        Vec::<&String>::new()
    );
}

#[test]
fn sigint_stops_the_service_with_status_0() {
    let mut service = ServiceBuilder::without_database().start();

    service.signal("INT");

    let status = service
        .wait_for_exit(Duration::from_secs(3))
        .expect("the service exits");
    assert_eq!(status.code(), Some(0));
    assert!(service.log_text().contains("stopped"));
}

#[test]
fn slow_and_idle_clients_do_not_starve_the_others() {
    let service = ServiceBuilder::without_database()
        .env("WORKERS", "2")
        .start();

    // Connections that say nothing, and uploads that stall mid-body, each
    // outnumbering the workers.
    let idle: Vec<_> = (0..50)
        .map(|_| TcpStream::connect(service.address()).unwrap())
        .collect();
    let stalled: Vec<_> = (0..6)
        .map(|_| {
            let mut stream = TcpStream::connect(service.address()).unwrap();
            stream
                .write_all(
                    b"POST /send HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
                      Content-Length: 5000\r\n\r\n{\"value\": \"",
                )
                .unwrap();
            stream
        })
        .collect();
    thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    let ping = service.get("/ping");
    let count = service.get("/");
    let write = service.post_json(&send_body("still served"));
    let took = started.elapsed();

    assert_eq!((ping.status, count.status, write.status), (200, 200, 200));
    assert!(took < Duration::from_secs(2), "took {took:?}");
    drop((idle, stalled));
}

#[test]
fn recount_rebuilds_the_count_after_writes_made_without_the_service() {
    let database = TestDatabase::create();
    let builder = ServiceBuilder::new(database.url());
    let service = builder.start();
    service.post_json(&send_body("through the service"));
    database.execute("INSERT INTO message (value) VALUES ('by hand 1'), ('by hand 2')");
    let stale = service.get("/");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ping-roach"))
        .arg("recount")
        .env_clear()
        .env("DATABASE_URL", database.url())
        .current_dir(builder.directory())
        .output()
        .unwrap();

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "3 messages\n");
    assert_eq!(stale.text(), "Hello, Docker! (1)\n");
    assert_eq!(service.get("/").text(), "Hello, Docker! (3)\n");
}

#[test]
fn healthcheck_reports_whether_the_service_answers() {
    let service = ServiceBuilder::without_database().start();
    let healthcheck = |port: u16| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ping-roach"))
            .arg("healthcheck")
            .env_clear()
            .env("HTTP_PORT", port.to_string())
            .status()
            .unwrap()
    };
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    assert!(healthcheck(service.address().port()).success());
    assert!(!healthcheck(free_port).success());
}

#[test]
fn clients_that_connect_together_are_all_answered() {
    let service = ServiceBuilder::without_database().start();

    // All connected before any sends: a burst that tiny_http's thread pool
    // alone would leave mostly unanswered.
    let mut clients: Vec<Client> = (0..100).map(|_| service.client()).collect();
    for client in &mut clients {
        client
            .send_raw(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
    }
    let started = Instant::now();
    // The first client left waiting ends the count, after one read timeout.
    let answered = clients
        .iter_mut()
        .map(|client| client.read_response())
        .take_while(|response| {
            response
                .as_ref()
                .is_ok_and(|response| response.status == 200)
        })
        .count();

    assert_eq!(answered, 100);
    assert!(started.elapsed() < Duration::from_secs(5));
}
