//! The HTTP server: tiny_http parses requests on its own connection
//! threads and a fixed set of workers answers them, with one log line per
//! request and a graceful stop.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use tiny_http::{Header, Request as TinyRequest};

use crate::error::ApiError;
use crate::http::{Request, Response};

/// Answers a request; the server calls it from many threads at once.
pub type Handler = dyn Fn(Request<&mut dyn Read>) -> Response + Send + Sync;

/// How long a stop waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(2_500);

/// Bodies up to this size arrive with their request: tiny_http reads them
/// before handing the request over. Larger ones are read from the socket
/// by whoever answers.
const BUFFERED_BODY_LIMIT: usize = 1024;

/// Threads that read a request body need little stack: they parse JSON of at
/// most the body limit and call the store.
const UPLOAD_STACK_SIZE: usize = 256 * 1024;

/// A bound listening socket, ready to serve.
pub struct Server {
    http: Arc<tiny_http::Server>,
    address: SocketAddr,
    workers: usize,
    stopping: Arc<AtomicBool>,
    /// Held open for the server's lifetime; see [`occupy_idle_threads`].
    _placeholders: Vec<TcpStream>,
}

/// Stops a running [`Server`] from another thread.
#[derive(Clone)]
pub struct StopHandle {
    http: Arc<tiny_http::Server>,
    workers: usize,
    stopping: Arc<AtomicBool>,
}

impl StopHandle {
    /// Stops taking requests; those already taken are answered first.
    pub fn stop(&self) {
        if !self.stopping.swap(true, Ordering::SeqCst) {
            // Each worker leaves its loop on one unblock, queued behind the
            // requests already waiting.
            for _ in 0..self.workers {
                self.http.unblock();
            }
        }
    }
}

impl Server {
    /// Binds `address`; port 0 picks a free port, which
    /// [`Server::local_addr`] then reports.
    pub fn bind(address: SocketAddr, workers: usize) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind(address)?;
        let address = listener.local_addr()?;
        let http = tiny_http::Server::from_listener(listener, None).map_err(io::Error::other)?;
        let placeholders = occupy_idle_threads(address)?;
        Ok(Self {
            http: Arc::new(http),
            address,
            workers,
            stopping: Arc::default(),
            _placeholders: placeholders,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// A handle that stops the server.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            http: Arc::clone(&self.http),
            workers: self.workers,
            stopping: Arc::clone(&self.stopping),
        }
    }

    /// Serves until stopped, then waits up to 2.5 s for the requests in
    /// flight. Fails if the listener broke instead.
    pub fn run(self, handler: Arc<Handler>) -> io::Result<()> {
        let (done_sender, done) = mpsc::channel();
        let failure = Arc::new(std::sync::Mutex::new(None));
        for index in 0..self.workers {
            let worker = Worker {
                http: Arc::clone(&self.http),
                handler: Arc::clone(&handler),
                stop: self.stop_handle(),
                done: done_sender.clone(),
            };
            let failure = Arc::clone(&failure);
            thread::Builder::new()
                .name(format!("worker-{index}"))
                .spawn(move || {
                    if let Err(error) = worker.run() {
                        *failure.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(error);
                    }
                })?;
        }
        // Request threads for large bodies hold a sender too: the channel
        // closes once the last worker and the last of those has finished.
        drop(done_sender);

        // The first worker to finish marks the start of a stop; from then
        // on, the rest get a deadline.
        let _ = done.recv();
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match done.recv_timeout(left) {
                Ok(()) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    warn!("stopping with requests still in flight");
                    break;
                }
            }
        }
        self.refuse_queued();
        match failure
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take()
        {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Answers requests that arrived after the stop with `503`, rather than
    /// leaving them to tiny_http's bodiless `500`.
    fn refuse_queued(&self) {
        while let Ok(Some(request)) = self.http.try_recv() {
            let body_unread = reads_body_from_socket(&request);
            let refuse = move || {
                // The client may be gone already; there is no one else to
                // tell.
                let _ = request.respond(to_tiny(Response::from_error(&ApiError::ShuttingDown)));
            };
            if body_unread {
                // tiny_http reads the unread body after answering, which
                // must not hold up the exit: the process ends without
                // waiting for this thread. Should the thread not start, the
                // dropped request still gets tiny_http's own 500.
                let _ = thread::Builder::new()
                    .stack_size(UPLOAD_STACK_SIZE)
                    .spawn(refuse);
            } else {
                refuse();
            }
        }
    }
}

/// tiny_http reads each connection on a thread of a pool that starts with
/// four idle threads, and queues a new connection instead of starting a
/// thread whenever it sees an idle one. Connections that arrive in a burst
/// before the idle threads wake are all queued, and those the four cannot
/// take wait until some other connection closes: 46 of 50 clients that
/// connected together went unanswered. Connections of the server's own keep
/// those four threads busy for good, so that each client connection starts
/// a thread of its own.
fn occupy_idle_threads(address: SocketAddr) -> io::Result<Vec<TcpStream>> {
    const TINY_HTTP_IDLE_THREADS: usize = 4;
    let target = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    // Time for tiny_http to start its pool, whose threads must be idle when
    // the placeholders arrive, and then for those threads to take them.
    thread::sleep(Duration::from_millis(50));
    let placeholders = (0..TINY_HTTP_IDLE_THREADS)
        .map(|_| TcpStream::connect((target, address.port())))
        .collect::<io::Result<Vec<_>>>()?;
    thread::sleep(Duration::from_millis(50));
    Ok(placeholders)
}

/// One of the threads that take requests off tiny_http's queue.
struct Worker {
    http: Arc<tiny_http::Server>,
    handler: Arc<Handler>,
    stop: StopHandle,
    done: mpsc::Sender<()>,
}

impl Worker {
    fn run(self) -> io::Result<()> {
        loop {
            let request = match self.http.recv() {
                Ok(request) => request,
                Err(_) if self.stop.stopping.load(Ordering::SeqCst) => return Ok(()),
                Err(error) => {
                    // tiny_http reports an accept failure once and then stops
                    // listening: only a restart can bring the service back.
                    error!("the listener failed: {error}");
                    self.stop.stop();
                    return Err(error);
                }
            };
            if reads_body_from_socket(&request) {
                // A slow client can take its time sending the body: it
                // does so on a thread of its own, not on a worker.
                let handler = Arc::clone(&self.handler);
                let done = self.done.clone();
                let spawned = thread::Builder::new()
                    .name("upload".to_owned())
                    .stack_size(UPLOAD_STACK_SIZE)
                    .spawn(move || {
                        answer(request, handler.as_ref());
                        drop(done);
                    });
                if let Err(error) = spawned {
                    error!("could not start a thread for a request body: {error}");
                }
            } else {
                answer(request, self.handler.as_ref());
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Tells `Server::run` that a stop is under way. An error only means
        // that `run` has already stopped waiting.
        let _ = self.done.send(());
    }
}

/// True when the body has not been read yet and must come from the socket.
fn reads_body_from_socket(request: &TinyRequest) -> bool {
    let has_header = |name: &'static str| request.headers().iter().any(|h| h.field.equiv(name));
    request
        .body_length()
        .is_some_and(|length| length > BUFFERED_BODY_LIMIT)
        || has_header("Transfer-Encoding")
        || has_header("Expect")
}

/// Hands `request` to the handler, turns a panic into a `500`, sends the
/// response and logs the request.
fn answer(mut request: TinyRequest, handler: &Handler) {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let url = request.url().to_owned();
    let content_type = header_value(&request, "Content-Type");
    let chunked = header_value(&request, "Transfer-Encoding").is_some();
    let content_length = request.body_length().map(|length| length as u64);
    let mut body = LazyBody(&mut request);
    let body: &mut dyn Read = &mut body;
    let view = Request {
        method: method.clone(),
        url,
        content_type,
        content_length,
        chunked,
        body,
    };
    let path = view.path().to_owned();

    let response = catch_unwind(AssertUnwindSafe(|| handler(view))).unwrap_or_else(|_| {
        error!("{method} {path} failed: the handler panicked");
        Response::from_error(&ApiError::Panic)
    });

    let status = response.status;

    if let Err(error) = request.respond(to_tiny(response)) {
        warn!("{method} {path}: could not send the response: {error}");
    }
    info!(
        "{method} {path} {status} {:.1}ms",
        started.elapsed().as_secs_f64() * 1e3
    );
}

/// Reads the body only when first asked to, so that tiny_http sends
/// `100 Continue` only to requests whose body is wanted.
struct LazyBody<'a>(&'a mut TinyRequest);

impl Read for LazyBody<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.0.as_reader().read(buffer)
    }
}

fn header_value(request: &TinyRequest, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.to_string())
}

fn to_tiny(response: Response) -> tiny_http::Response<io::Cursor<Vec<u8>>> {
    let header = |name: &str, value: &str| {
        Header::from_bytes(name.as_bytes(), value.as_bytes())
            .expect("header names and values are ASCII")
    };
    let mut tiny = tiny_http::Response::from_data(response.body)
        .with_status_code(response.status)
        .with_header(header("Content-Type", response.content_type));
    if let Some(allow) = response.allow {
        tiny.add_header(header("Allow", allow));
    }
    tiny
}
