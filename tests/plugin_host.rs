//! Runs the plugin_host example on examples/plugins/ and checks its table:
//! the well-behaved plugins answer from the input they were handed, the
//! endless loop hits its CPU budget, the memory bomb its memory limit, the
//! escape attempt is refused, the crash is reported. (The example is built
//! with this test's cargo and profile; no harness: one case.)

use std::process::Command;

fn main() {
    if let Some(problem) = luring_sandbox::Supervisor::user_namespace_problem() {
        println!("skipped: this system refuses user namespaces ({problem})");
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["run", "--quiet"]).current_dir(root);
    if !cfg!(debug_assertions) {
        cargo.arg("--release");
    }
    cargo.args(["--example", "plugin_host", "--", "examples/plugins/"]);
    let output = cargo.output().expect("cargo run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "plugin_host failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let row = |plugin: &str| -> Vec<String> {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{plugin} ")))
            .unwrap_or_else(|| panic!("no row for {plugin}:\n{stdout}"));
        line.split(" | ").map(|c| c.trim().to_owned()).collect()
    };
    let expected: &[(&str, &str, &str)] = &[
        ("crash.lua", "crashed (exit code 1)", "-"),
        ("endless_loop.lua", "CPU budget used up", "-"),
        ("memory_bomb.lua", "memory limit hit", "-"),
        ("top_word.lua", "ok", "the x3, dog x2"),
        ("word_count.lua", "ok", "14 words, 3 lines"),
    ];
    for (plugin, ended, reply) in expected {
        assert_eq!(row(plugin), [*plugin, *ended, *reply], "{stdout}");
    }
    let escape = row("escape.lua");
    assert_eq!(escape[1], "ok", "{stdout}");
    assert!(
        escape[2].starts_with("open /etc/passwd: refused (")
            && escape[2].contains("; connect: refused (")
            && !escape[2].contains("succeeded"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 2 + 6, "{stdout}");
    println!("test plugin_host_table ... ok");
    println!("1 passed, 0 failed");
}
