//! A host for untrusted Lua plugins, each in a sandbox of its own.
//!
//! `cargo run --release --example plugin_host -- examples/plugins/` loads
//! every `*.lua` file of the folder, hands each plugin a read-only
//! descriptor of the folder's `input.txt` and a request, collects the
//! replies and prints, as a table, what each plugin answered and how it
//! ended. A plugin can reach nothing but that descriptor: it has no file
//! system and no network, 1 s of CPU and 16 MiB of Lua heap.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use luring::{ActorEnded, ActorSpec, Mailbox, Message, Runtime, SandboxOptions};

/// How long the host waits for all the plugins together.
const DEADLINE: Duration = Duration::from_secs(30);

struct Row {
    plugin: String,
    reply: String,
    ended: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // First thing, while this is the only thread: the sandbox supervisor
    // is a fork of this process.
    luring::start_supervisor()?;
    let folder = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "examples/plugins".into()),
    );
    let input = folder.join("input.txt");
    let mut plugins: Vec<PathBuf> = std::fs::read_dir(&folder)
        .map_err(|e| format!("cannot read {}: {e}", folder.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "lua"))
        .collect();
    plugins.sort();

    let runtime = Runtime::builder().build()?;
    let options = SandboxOptions::new().cpu_seconds(1).memory(16 << 20);
    let mut running = Vec::new();
    let mut rows = Vec::new();
    for path in &plugins {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        match start(&runtime, path, &name, &options, &input) {
            Ok(mailbox) => running.push((name, mailbox)),
            Err(e) => rows.push(Row {
                plugin: name,
                reply: "-".into(),
                ended: format!("not started: {e}"),
            }),
        }
    }
    let deadline = Instant::now() + DEADLINE;
    for (name, mailbox) in running {
        rows.push(collect(name, &mailbox, deadline));
    }
    rows.sort_by(|a, b| a.plugin.cmp(&b.plugin));
    runtime.shutdown()?;
    print_table(&rows);
    Ok(())
}

/// Spawns one plugin and sends it its request; its replies and its end
/// arrive in the returned mailbox.
fn start(
    runtime: &Runtime,
    path: &Path,
    name: &str,
    options: &SandboxOptions,
    input: &Path,
) -> Result<Mailbox, Box<dyn std::error::Error>> {
    let mailbox = runtime.mailbox();
    let source = std::fs::read(path)?;
    let plugin = runtime.spawn(
        ActorSpec::source(name, source)
            .sandbox(options.clone())
            .replies_to(&mailbox)
            .monitor(&mailbox),
    )?;
    let input: OwnedFd = std::fs::File::open(input)
        .map_err(|e| format!("cannot open {}: {e}", input.display()))?
        .into();
    plugin.send(Message::object([
        ("input", Message::Fd(input)),
        ("top", 2.into()),
        ("reply", mailbox.address().into()),
    ]))?;
    Ok(mailbox)
}

/// Reads a plugin's messages until its monitor notice (or the deadline).
fn collect(plugin: String, mailbox: &Mailbox, deadline: Instant) -> Row {
    let mut reply = "-".to_owned();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(message) = mailbox.recv_timeout(left) else {
            return Row {
                plugin,
                reply,
                ended: "still running at the deadline".into(),
            };
        };
        if let Some(end) = ActorEnded::from_message(&message) {
            return Row {
                plugin,
                reply,
                ended: describe(&end),
            };
        }
        reply = match message.get("result").and_then(|r| r.as_str()) {
            Some(text) => text.to_owned(),
            None => format!("{message:?}"),
        };
    }
}

fn describe(end: &ActorEnded) -> String {
    match (end.reason.as_str(), end.code, end.signal) {
        ("exited", Some(0), _) => "ok".into(),
        ("exited", Some(code), _) => format!("crashed (exit code {code})"),
        ("memory", ..) => "memory limit hit".into(),
        ("cpu_budget", ..) => "CPU budget used up".into(),
        ("killed", _, Some(signal)) => format!("killed (signal {signal})"),
        ("seccomp", ..) => format!("forbidden system call {:?}", end.syscall),
        (reason, ..) => reason.to_owned(),
    }
}

fn print_table(rows: &[Row]) {
    let width = |f: fn(&Row) -> &str, title: &str| {
        rows.iter()
            .map(|r| f(r).chars().count())
            .chain([title.len()])
            .max()
            .unwrap_or(0)
    };
    let (w_plugin, w_ended) = (width(|r| &r.plugin, "plugin"), width(|r| &r.ended, "ended"));
    println!("{:<w_plugin$} | {:<w_ended$} | reply", "plugin", "ended");
    println!(
        "{}-+-{}-+-{}",
        "-".repeat(w_plugin),
        "-".repeat(w_ended),
        "-".repeat(5)
    );
    for r in rows {
        println!(
            "{:<w_plugin$} | {:<w_ended$} | {}",
            r.plugin, r.ended, r.reply
        );
    }
}
