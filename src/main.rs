//! The `luring` command: a thin layer over the library's public API.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Run a Lua program as the main actor of a luring process.
#[derive(Parser, Debug)]
#[command(name = "luring", version, about, long_about = None)]
struct Cli {
    /// The Lua script to run (its directory is the import root).
    script: PathBuf,
    /// Arguments for the script (`system.arguments` / `arg`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn init_logging() {
    // Nothing is logged unless LURING_LOG asks for it (e.g. LURING_LOG=debug).
    let Ok(filter) = std::env::var("LURING_LOG") else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = luring::Runtime::new().and_then(|rt| rt.run_file(&cli.script, &cli.args));
    match result {
        Ok(status) => ExitCode::from(status.code() as u8),
        Err(e) => {
            eprintln!("luring: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
