//! An embedding that never started the supervisor: a sandboxed spawn fails
//! with an error saying what to do; nothing runs unsandboxed.

#[test]
fn spawning_a_sandbox_without_a_supervisor_says_how_to_start_one() {
    let dir = std::env::temp_dir().join(format!("luring-no-supervisor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.lua"), "error('this must never run')\n").unwrap();
    std::fs::write(
        dir.join("main.lua"),
        r#"
        local ok, e = pcall(spawn_vm, { module = '/plugin', sandbox = {} })
        local text = tostring(e)
        if not ok and text:find('start_supervisor', 1, true) then
          require('system').exit(42)
        end
        print(ok, text)
        require('system').exit(1)
        "#,
    )
    .unwrap();
    let status = luring::Runtime::new()
        .unwrap()
        .run_file(dir.join("main.lua"), &[])
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(status.code(), 42);
}
