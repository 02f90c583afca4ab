//! The `ping-roach` binary: reads `.env`, sets up logging, runs a command.

use std::process::ExitCode;

use ping_roach::cli::{Command, USAGE};
use ping_roach::error::chain;

fn main() -> ExitCode {
    let command = match Command::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(problem) => {
            eprintln!("ping-roach: {problem}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Variables already in the environment win over the file; having no
    // .env at all is normal, in a container for one.
    let dotenv = dotenvy::dotenv();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(error) = dotenv
        && !error.not_found()
    {
        log::warn!("ignoring .env: {error}");
    }
    std::panic::set_hook(Box::new(|panic| log::error!("{panic}")));
    keep_large_buffers_out_of_the_heap();

    match command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("{}", chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// tiny_http discards an unread request body through one buffer the size of
/// what is left. glibc would serve the next buffers of that size from its
/// heap, zeroing them page by page, so a rejected 20 MB upload would leave
/// 20 MB resident. A fixed threshold keeps large buffers in mappings of
/// their own, which free returns to the system at once.
fn keep_large_buffers_out_of_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a glibc tuning parameter; it is called
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
