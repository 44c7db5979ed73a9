//! `schema.graphql` is generated from the code (`minifig schema`) and must not go stale.

#[test]
fn schema_graphql_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).expect("schema.graphql exists");
    let generated = minifig::graphql::sdl();
    assert!(
        committed == generated,
        "schema.graphql is stale: regenerate it with `cargo run -- schema > schema.graphql` and commit it"
    );
}
