//! Writers that post unique values until stopped, remembering which ones
//! the service acknowledged.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use super::client::Client;
use super::send_body;

pub struct WriteLoad {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<String>>>,
    writers: Vec<JoinHandle<()>>,
}

impl WriteLoad {
    /// Starts `writers` clients posting `w<writer>-<n>` as fast as the
    /// service answers. A write counts as acknowledged only on `200`;
    /// refused or broken requests are retried on a fresh connection.
    pub fn start(address: SocketAddr, writers: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let writers = (0..writers)
            .map(|writer| {
                let (stop, acknowledged) = (Arc::clone(&stop), Arc::clone(&acknowledged));
                thread::spawn(move || write_until_stopped(address, writer, &stop, &acknowledged))
            })
            .collect();
        Self {
            stop,
            acknowledged,
            writers,
        }
    }

    /// How many writes were acknowledged so far.
    pub fn acknowledged_count(&self) -> usize {
        self.acknowledged.lock().unwrap().len()
    }

    /// Stops the writers and returns every acknowledged value.
    pub fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        for writer in self.writers {
            writer.join().unwrap();
        }
        std::mem::take(&mut self.acknowledged.lock().unwrap())
    }
}

fn write_until_stopped(
    address: SocketAddr,
    writer: usize,
    stop: &AtomicBool,
    acknowledged: &Mutex<Vec<String>>,
) {
    let mut client = None;
    for n in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let connection = match client.as_mut() {
            Some(connection) => connection,
            None => match Client::connect(address) {
                Ok(connection) => client.insert(connection),
                Err(_) => {
                    // The service is down; try again shortly.
                    thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                }
            },
        };
        let value = format!("w{writer}-{n}");
        match connection.post_json("/send", &send_body(&value)) {
            Ok(response) if response.status == 200 => acknowledged.lock().unwrap().push(value),
            Ok(_) => {}
            Err(_) => client = None,
        }
    }
}

/// The acknowledged values missing from `stored`, which must be sorted.
pub fn lost_writes<'a>(acknowledged: &'a [String], stored: &[String]) -> Vec<&'a String> {
    acknowledged
        .iter()
        .filter(|value| stored.binary_search(value).is_err())
        .collect()
}
