//! The checked-in `schema.graphql` is what the server serves.

use rapport_tests::spawn_app;

#[tokio::test]
async fn checked_in_schema_matches_the_served_schema() {
    let app = spawn_app().await;
    let served = reqwest::get(app.url("/schema.graphql")).await.unwrap().text().await.unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    if std::env::var("UPDATE_SCHEMA").is_ok() {
        std::fs::write(path, &served).unwrap();
        return;
    }
    assert!(
        checked_in.trim() == served.trim(),
        "schema.graphql is out of date; run `UPDATE_SCHEMA=1 cargo test -p rapport-tests schema` and commit it"
    );
}

#[tokio::test]
async fn cli_schema_equals_served_schema() {
    let app = spawn_app().await;
    let served = reqwest::get(app.url("/schema.graphql")).await.unwrap().text().await.unwrap();
    assert_eq!(rapport::graphql::sdl().trim(), served.trim());
}
