//! The `luring` command: a thin layer over the library's public API.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Run a Lua program as the main actor of a luring process.
#[derive(Parser, Debug)]
#[command(name = "luring", version, about, long_about = None)]
struct Cli {
    /// Cap on each VM's Lua heap, in bytes, with an optional K, M or G
    /// suffix (powers of 1024). Past it, allocations fail with a Lua "not
    /// enough memory" error that pcall can catch. Default: no cap.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    memory_limit: Option<usize>,
    /// The Lua script to run (its directory is the import root).
    script: PathBuf,
    /// Arguments for the script (`system.arguments` / `arg`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// `123`, `64K`, `512M`, `2G` (powers of 1024) as a byte count.
fn parse_size(text: &str) -> Result<usize, String> {
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'k' | b'K') => (&text[..text.len() - 1], 10),
        Some(b'm' | b'M') => (&text[..text.len() - 1], 20),
        Some(b'g' | b'G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size: use bytes, or a number with K, M or G"))?;
    if n == 0 {
        return Err("the memory limit must be above zero".into());
    }
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))
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
    // Before anything else, while this is the only thread: the supervisor
    // of sandboxed actors is a fork of this process. If it cannot start,
    // sandboxed spawns fail with the reason; everything else works.
    let supervisor = luring::start_supervisor();
    // Before any thread exists: every thread inherits the blocked mask
    // that signal sets need (a failure only disables signal sets).
    if let Err(e) = luring::prepare_process_signals() {
        eprintln!("luring: signal sets are unavailable: {e}");
    }
    let cli = Cli::parse();
    init_logging();
    if let Err(e) = supervisor {
        tracing::debug!(error = %e, "no sandbox supervisor");
    }
    let result = luring::Runtime::new().and_then(|rt| {
        rt.with_memory_limit(cli.memory_limit)
            .run_file(&cli.script, &cli.args)
    });
    match result {
        Ok(status) => ExitCode::from(status.code() as u8),
        Err(e) => {
            eprintln!("luring: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
