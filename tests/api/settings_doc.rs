//! The README's configuration table is generated from the settings' doc comments
//! (`minifig config --markdown`) and must not go stale.

use std::process::Command;

#[test]
fn the_readme_configuration_table_matches_the_settings() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md exists");
    let committed = minifig_common::settings_doc::section(&readme, "minifig")
        .expect("README.md has the <!-- settings:minifig --> section");
    assert!(
        committed == minifig::config::settings_markdown(),
        "README.md's configuration table is stale: replace it with the output of `cargo run -- config --markdown`"
    );
}

#[test]
fn config_markdown_prints_the_table() {
    let output = Command::new(env!("CARGO_BIN_EXE_minifig")).args(["config", "--markdown"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), minifig::config::settings_markdown());
}
