//! The `minifig` binary's commands and its start-up checks, run as a user would.

use std::process::Command;

use crate::helpers::spawn_app;

fn minifig() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_minifig"));
    for variable in ["DATABASE_URL", "JWT_SECRET", "APP_ENV", "FACTORY_USERNAME", "FACTORY_PASSWORD", "PORT", "HOST"] {
        command.env_remove(variable);
    }
    command
}

#[test]
fn production_refuses_to_start_without_a_jwt_secret() {
    let dir = tempfile::tempdir().unwrap();
    let output = minifig()
        .args(["serve", "--port", "0"])
        .env("APP_ENV", "production")
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display()))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("JWT_SECRET must be set"), "{stderr}");
}

/// Runs `command` for at most 20 s: a server that starts instead of refusing is stopped
/// and reported, rather than hanging the test.
fn output_within_20_s(mut command: Command) -> std::process::Output {
    let mut child = command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    for _ in 0..200 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    panic!("the server started instead of refusing: {}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn production_refuses_the_example_secrets_of_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
    // The values docker-compose.yml used to default to, and those of .env.example.
    for (jwt, factory) in [
        ("change-me-this-is-only-a-local-development-secret", "Own-Factory-Pass-9!"),
        ("replace-with-the-output-of-openssl-rand-base64-48", "Own-Factory-Pass-9!"),
        ("an-own-secret-that-is-long-enough-for-hs256", "Factory-Pass-123"),
        ("an-own-secret-that-is-long-enough-for-hs256", "Replace-With-Your-Own-Factory-Pass-1"),
    ] {
        let mut command = minifig();
        command
            .args(["serve", "--port", "0"])
            .env("APP_ENV", "production")
            .env("DATABASE_URL", &database)
            .env("JWT_SECRET", jwt)
            .env("FACTORY_USERNAME", "factory")
            .env("FACTORY_PASSWORD", factory);
        let output = output_within_20_s(command);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("published in the MiniFigurine repository"), "{stderr}");
        assert!(!stderr.contains(jwt) && !stderr.contains(factory), "the secret was printed: {stderr}");
    }
}

#[test]
fn production_refuses_a_short_jwt_secret_and_never_prints_it() {
    let output = minifig()
        .args(["serve", "--port", "0"])
        .env("APP_ENV", "production")
        .env("JWT_SECRET", "tooshort-s3cret")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least 32 bytes"), "{stderr}");
    assert!(!stderr.contains("tooshort-s3cret"), "{stderr}");
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let output = minifig().arg("schema").output().unwrap();
    assert!(output.status.success());
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), committed);
}

#[tokio::test]
async fn migrate_command_is_idempotent_on_a_migrated_database() {
    let app = spawn_app().await;
    for _ in 0..2 {
        let output = minifig().arg("migrate").env("DATABASE_URL", &app.database_url).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let body = app.graphql(None, "{ figurines { id } }", serde_json::json!({})).await;
    assert_eq!(body["data"]["figurines"].as_array().map(Vec::len), Some(10), "the seed ran once: {body}");
}

#[tokio::test]
async fn migrate_command_creates_a_fresh_sqlite_database_with_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    let output =
        minifig().arg("migrate").env("DATABASE_URL", format!("sqlite://{}?mode=rwc", path.display())).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let db = sea_orm::Database::connect(format!("sqlite://{}", path.display())).await.unwrap();
    let count = sea_orm::ConnectionTrait::query_one_raw(
        &db,
        sea_orm::Statement::from_string(sea_orm::DatabaseBackend::Sqlite, "SELECT COUNT(*) AS n FROM figurines"),
    )
    .await
    .unwrap()
    .and_then(|row| row.try_get::<i64>("", "n").ok());
    assert_eq!(count, Some(10));
}
