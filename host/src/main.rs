//! `eddy`: the command line of the Eddy stream processor.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let filter = if args.verbose {
        "eddy_host=debug,info"
    } else if args.is_server() {
        "info"
    } else {
        "warn"
    };
    let env_filter = || tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG").unwrap_or_else(|_| filter.into());
    if args.is_server() {
        // The server keeps each app's log lines for `eddy app logs`,
        // whatever its own log shows.
        let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(env_filter());
        let capture = eddy_host::server::logs::CaptureLayer.with_filter(tracing_subscriber::filter::LevelFilter::INFO);
        tracing_subscriber::registry().with(fmt).with(capture).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(env_filter()).with_writer(std::io::stderr).init();
    }
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}
