//! The `berth` binary: parse the command line and run it.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Before the runtime's threads exist, so none gets an arena of its own
    // beyond the cap.
    berth::memtrim::limit_arenas();
    let cli = berth::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(berth::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
