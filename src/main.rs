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

    match command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("{}", chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}
