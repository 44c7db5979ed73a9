//! (tests being written)

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let response = reqwest::get(format!("{}/healthz", app.address)).await.unwrap();
    assert_eq!(response.status(), 200);
}
