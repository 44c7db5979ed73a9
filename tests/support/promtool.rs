//! `promtool`, from Debian's `prometheus` package (scripts/test installs it when missing):
//! what the tests check expositions, the Prometheus config and the alert rules with.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Runs `promtool` with `args` and `input` on its stdin: whether it passed, and all it said.
pub async fn run(args: &[&str], input: &str) -> (bool, String) {
    let mut promtool = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian's `prometheus` package; scripts/test installs it)");
    let mut stdin = promtool.stdin.take().expect("promtool's stdin");
    stdin.write_all(input.as_bytes()).await.expect("promtool's input is written");
    drop(stdin);
    let checked = promtool.wait_with_output().await.expect("promtool finishes");
    let said = format!("{}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
    (checked.status.success(), said)
}

/// Asserts that `text` is an exposition `promtool check metrics` passes without a word: a
/// lint (a counter without `_total`, a missing `# HELP`) fails as an error would.
pub async fn assert_clean_exposition(text: &str) {
    let (passed, said) = run(&["check", "metrics"], text).await;
    assert!(passed && said.trim().is_empty(), "promtool check metrics:\n{said}\n{text}");
}
