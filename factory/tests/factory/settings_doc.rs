//! `factory/README.md`'s configuration table is generated from the settings' doc comments
//! (`factory config --markdown`) and must not go stale; the subcommand leaves the default
//! invocation, which reads the settings, as it was.

use std::process::Command;

fn factory() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_factory"));
    for variable in ["REDIS_URL", "FACTORY_USERNAME", "FACTORY_PASSWORD", "FACTORY_CONCURRENCY"] {
        command.env_remove(variable);
    }
    command
}

#[test]
fn the_readme_configuration_table_matches_the_settings() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md exists");
    let committed = minifig_common::settings_doc::section(&readme, "factory")
        .expect("factory/README.md has the <!-- settings:factory --> section");
    assert!(
        committed == factory::config::settings_markdown(),
        "factory/README.md's configuration table is stale: replace it with the output of `cargo run -p factory -- config --markdown`"
    );
}

#[test]
fn config_markdown_prints_the_table_without_the_required_settings() {
    let output = factory().args(["config", "--markdown"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), factory::config::settings_markdown());
}

#[test]
fn without_a_subcommand_the_settings_are_still_required_and_checked() {
    let missing = factory().output().unwrap();
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("--redis-url") && stderr.contains("--factory-password"), "{stderr}");

    let invalid = factory()
        .args(["--redis-url", "redis://127.0.0.1:1", "--factory-username", "f", "--factory-password", "p"])
        .args(["--factory-concurrency", "0"])
        .output()
        .unwrap();
    assert!(!invalid.status.success());
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(stderr.contains("--factory-concurrency"), "{stderr}");
}
