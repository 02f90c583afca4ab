//! The HTTP server on its own, with handlers that misbehave on purpose.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ping_roach::http::{Request, Response};
use ping_roach::server::{Handler, Server};

use crate::support::Client;

fn serve(
    handler: Arc<Handler>,
) -> (
    SocketAddr,
    ping_roach::server::StopHandle,
    thread::JoinHandle<()>,
) {
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), 2).unwrap();
    let address = server.local_addr();
    let stop = server.stop_handle();
    let running = thread::spawn(move || server.run(handler).unwrap());
    (address, stop, running)
}

fn panics_on_boom(request: Request<&mut dyn Read>) -> Response {
    if request.path() == "/boom" {
        panic!("a bug in a handler");
    }
    Response {
        status: 200,
        content_type: "text/plain",
        body: b"fine".to_vec(),
        allow: None,
    }
}

#[test]
fn a_panicking_handler_answers_500_and_the_workers_survive() {
    let (address, stop, running) = serve(Arc::new(panics_on_boom));
    let mut client = Client::connect(address).unwrap();

    let panicked: Vec<_> = (0..4).map(|_| client.get("/boom").unwrap()).collect();
    let after = client.get("/fine").unwrap();

    for response in panicked {
        assert_eq!(
            (response.status, response.text()),
            (500, "{\"message\":\"internal error\"}\n")
        );
    }
    assert_eq!((after.status, after.text()), (200, "fine"));
    stop.stop();
    running.join().unwrap();
}

#[test]
fn a_stop_finishes_the_request_in_flight() {
    let slow = |_: Request<&mut dyn Read>| {
        thread::sleep(Duration::from_millis(500));
        Response {
            status: 200,
            content_type: "text/plain",
            body: b"done".to_vec(),
            allow: None,
        }
    };
    let (address, stop, running) = serve(Arc::new(slow));
    let mut client = Client::connect(address).unwrap();
    client
        .send_raw(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    thread::sleep(Duration::from_millis(100));

    stop.stop();
    let response = client.read_response().unwrap();

    assert_eq!((response.status, response.text()), (200, "done"));
    running.join().unwrap();
}
