//! The `berth` binary: parse the command line and run it.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = berth::cli::Cli::parse();
    match berth::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
