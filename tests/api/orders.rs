//! `placeOrder`, `order` and `myOrders` (contract sections 3 and 4): who may place and see
//! orders, what an order holds, idempotency keys, pagination, frozen prices.

use futures::future::join_all;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Catalog, ORDER_FIELDS, error_code, error_field, spawn_app, unique_username};

/// The order object of a successful `placeOrder` response.
fn placed(body: &Value) -> &Value {
    let order = &body["data"]["placeOrder"];
    assert!(order.is_object() && body.get("errors").is_none(), "placeOrder failed: {body}");
    order
}

fn id_of(order: &Value) -> String {
    order["id"].as_str().unwrap_or_else(|| panic!("an order with an id: {order}")).to_owned()
}

fn cents(value: &Value) -> i64 {
    value["cents"].as_i64().unwrap_or_else(|| panic!("expected a Money with cents: {value}"))
}

fn knights(catalog: &Catalog, quantity: i64) -> Value {
    json!({"items": [{"figurineId": catalog.figurine("FIG-KNIGHT"), "quantity": quantity}]})
}

/// Asserts a `BAD_USER_INPUT` on `field` with no `placeOrder` result.
fn assert_bad_input(body: &Value, field: &str) {
    assert_eq!(error_code(body), "BAD_USER_INPUT", "{body}");
    assert_eq!(error_field(body), field, "{body}");
    assert!(body["data"].is_null() || body["data"]["placeOrder"].is_null(), "{body}");
}

#[tokio::test]
async fn place_order_without_a_token_is_unauthenticated() {
    // Arrange
    let app = spawn_app().await;
    let catalog = app.catalog().await;

    // Act
    let body = app
        .graphql(
            None,
            "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }",
            json!({"input": knights(&catalog, 1)}),
        )
        .await;

    // Assert
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(app.count_rows("orders").await, 0);
}

#[tokio::test]
async fn a_placed_order_equals_the_quote_for_the_same_input() {
    // Arrange: duplicates, two figurines over the tier (N = 12 + 7 = 19 -> 5%), a package.
    let app = spawn_app().await;
    let customer = app.register(&unique_username("buyer")).await;
    let catalog = app.catalog().await;
    let input = json!({
        "items": [
            {"figurineId": catalog.figurine("FIG-WIZARD"), "quantity": 5},
            {"figurineId": catalog.figurine("FIG-SKELETON"), "quantity": 7},
            {"figurineId": catalog.figurine("FIG-WIZARD"), "quantity": 7},
        ],
        "packages": [{"packageId": catalog.package("PKG-DRAGON-HUNT"), "quantity": 2}],
    });
    let quote_body = app.quote(None, input.clone()).await;
    let quote = &quote_body["data"]["quote"];
    assert!(quote.is_object(), "quote failed: {quote_body}");

    // Act
    let body = app.place_order(&customer.token, input).await;

    // Assert
    let order = placed(&body);
    for field in ["lines", "subtotal", "discount", "total", "appliedDiscounts"] {
        assert_eq!(order[field], quote[field], "the order's {field} equals the quote's");
    }
    // And the figures are what the rules say, not merely equal to each other.
    let wizard = 12 * catalog.figurines["FIG-WIZARD"].1;
    let skeleton = 7 * catalog.figurines["FIG-SKELETON"].1;
    let hunt = 2 * catalog.packages["PKG-DRAGON-HUNT"].1;
    let discount = wizard * 5 / 100 + skeleton * 5 / 100;
    assert_eq!(
        (cents(&order["subtotal"]), cents(&order["discount"]), cents(&order["total"])),
        (wizard + skeleton + hunt, discount, wizard + skeleton + hunt - discount)
    );
    assert_eq!(order["appliedDiscounts"][0]["code"], "BULK_5");
    assert_eq!(order["lines"].as_array().unwrap().len(), 3);
    assert_eq!(order["subtotal"]["currency"], "EUR");

    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["version"], 1);
    assert_eq!(order["customer"], json!({"id": customer.id, "username": customer.username}));
    let history = order["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(
        (&history[0]["orderId"], &history[0]["status"], &history[0]["version"], &history[0]["note"]),
        (&order["id"], &json!("PENDING"), &json!(1), &Value::Null)
    );
    assert!(
        order["createdAt"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
        "createdAt is RFC 3339: {order}"
    );
}

#[tokio::test]
async fn shipping_address_defaults_to_the_registered_address_and_can_be_overridden() {
    // Arrange
    let app = spawn_app().await;
    let customer = app.register(&unique_username("shipper")).await;
    let registered = format!("{}'s house, 1 Main St", customer.username);
    let catalog = app.catalog().await;
    let mut other = knights(&catalog, 1);
    other["shippingAddress"] = json!("221B Baker Street\nLondon NW1 6XE");

    // Act
    let default_body = app.place_order(&customer.token, knights(&catalog, 1)).await;
    let other_body = app.place_order(&customer.token, other).await;

    // Assert
    assert_eq!(placed(&default_body)["shippingAddress"], json!(registered));
    assert_eq!(placed(&other_body)["shippingAddress"], json!("221B Baker Street\nLondon NW1 6XE"));
    let me = app.graphql(Some(&customer.token), "{ me { address } }", json!({})).await;
    assert_eq!(me["data"]["me"]["address"], json!(registered), "the account's address is unchanged");
}

#[tokio::test]
async fn an_invalid_shipping_address_is_bad_input_and_stores_nothing() {
    // Arrange
    let app = spawn_app().await;
    let customer = app.register(&unique_username("shipper")).await;
    let catalog = app.catalog().await;

    for address in [String::new(), "   ".to_owned(), "a".repeat(201)] {
        let mut input = knights(&catalog, 1);
        input["shippingAddress"] = json!(address);

        // Act
        let body = app.place_order(&customer.token, input).await;

        // Assert
        assert_bad_input(&body, "shippingAddress");
    }
    assert_eq!(app.my_order_ids(&customer.token).await, Vec::<String>::new());
    assert_eq!(app.count_rows("orders").await, 0);

    // 200 characters is the limit, not past it.
    let mut input = knights(&catalog, 1);
    input["shippingAddress"] = json!("a".repeat(200));
    assert_eq!(placed(&app.place_order(&customer.token, input).await)["shippingAddress"], json!("a".repeat(200)));
}

#[tokio::test]
async fn bad_lines_are_bad_input_and_store_nothing() {
    // Arrange
    let app = spawn_app().await;
    let customer = app.register(&unique_username("buyer")).await;
    let catalog = app.catalog().await;

    // Act
    let empty = app.place_order(&customer.token, json!({})).await;
    let zero = app.place_order(&customer.token, knights(&catalog, 0)).await;
    let unknown = app
        .place_order(&customer.token, json!({"packages": [{"packageId": Uuid::new_v4().to_string(), "quantity": 1}]}))
        .await;

    // Assert
    assert_bad_input(&empty, "items");
    assert_bad_input(&zero, "items[0].quantity");
    assert_bad_input(&unknown, "packages[0].packageId");
    assert_eq!(app.count_rows("orders").await, 0);
}

#[tokio::test]
async fn the_same_idempotency_key_twice_returns_the_same_order() {
    // Arrange
    let app = spawn_app().await;
    let customer = app.register(&unique_username("retrier")).await;
    let catalog = app.catalog().await;
    let mut input = knights(&catalog, 3);
    input["idempotencyKey"] = json!("checkout-7f3a");

    // Act
    let first = app.place_order(&customer.token, input.clone()).await;
    let second = app.place_order(&customer.token, input).await;

    // Assert
    let (first, second) = (placed(&first), placed(&second));
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first, second, "the replay is the very same order");
    assert_eq!(app.my_order_ids(&customer.token).await, vec![id_of(first)]);
    assert_eq!(app.count_rows("orders").await, 1);
    assert_eq!(app.count_rows("order_events").await, 1);
}

// Several worker threads, so that the server really runs the duplicates side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_idempotency_key_create_exactly_one_order() {
    // Arrange: open the client's connections first, so the duplicates leave together.
    let app = spawn_app().await;
    let customer = app.register(&unique_username("racer")).await;
    let catalog = app.catalog().await;
    join_all((0..8).map(|_| app.my_orders(&customer.token, json!(1), Value::Null, Value::Null))).await;
    let keys = ["double-click-1", "double-click-2", "double-click-3", "double-click-4"];
    let mut order_ids = Vec::new();

    for key in keys {
        let mut input = knights(&catalog, 11);
        input["idempotencyKey"] = json!(key);

        // Act: 8 identical requests at once.
        let bodies = join_all((0..8).map(|_| app.place_order(&customer.token, input.clone()))).await;

        // Assert: every call gets the order the first one created.
        let ids: Vec<String> = bodies.iter().map(|body| id_of(placed(body))).collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "key {key}: every call gets the same order: {ids:?}");
        order_ids.push(ids[0].clone());
    }

    // Assert: one order per key, each stored once.
    order_ids.reverse();
    assert_eq!(app.my_order_ids(&customer.token).await, order_ids, "one order per key, newest first");
    assert_eq!(app.count_rows("orders").await, 4);
    assert_eq!(app.count_rows("order_events").await, 4, "one PENDING event per order, not one per call");
    assert_eq!(app.count_rows("order_lines").await, 4, "lines stored once per order");
}

#[tokio::test]
async fn an_idempotency_key_reused_for_a_different_order_is_a_conflict() {
    // Arrange
    let app = spawn_app().await;
    let customer = app.register(&unique_username("reuser")).await;
    let catalog = app.catalog().await;
    let mut first = knights(&catalog, 3);
    first["idempotencyKey"] = json!("key-1");
    let mut different = knights(&catalog, 4);
    different["idempotencyKey"] = json!("key-1");
    let original = app.place_order(&customer.token, first).await;
    let original_id = id_of(placed(&original));

    // Act
    let body = app.place_order(&customer.token, different).await;

    // Assert
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    assert_eq!(error_field(&body), "idempotencyKey", "{body}");
    assert!(body["data"].is_null() || body["data"]["placeOrder"].is_null(), "{body}");
    assert_eq!(app.my_order_ids(&customer.token).await, vec![original_id]);
}

#[tokio::test]
async fn two_customers_using_the_same_idempotency_key_get_two_orders() {
    // Arrange
    let app = spawn_app().await;
    let alice = app.register(&unique_username("alice")).await;
    let bob = app.register(&unique_username("bob")).await;
    let catalog = app.catalog().await;
    let mut input = knights(&catalog, 2);
    input["idempotencyKey"] = json!("same-key");

    // Act
    let alices = app.place_order(&alice.token, input.clone()).await;
    let bobs = app.place_order(&bob.token, input).await;

    // Assert
    let (alices, bobs) = (placed(&alices), placed(&bobs));
    assert_ne!(alices["id"], bobs["id"]);
    assert_eq!(alices["customer"]["id"], json!(alice.id));
    assert_eq!(bobs["customer"]["id"], json!(bob.id));
    assert_eq!(app.my_order_ids(&alice.token).await, vec![id_of(alices)]);
    assert_eq!(app.my_order_ids(&bob.token).await, vec![id_of(bobs)]);
}

#[tokio::test]
async fn an_idempotency_key_must_be_one_to_sixty_four_characters() {
    // Arrange
    let app = spawn_app().await;
    let customer = app.register(&unique_username("keyer")).await;
    let catalog = app.catalog().await;

    for key in [String::new(), "k".repeat(65)] {
        let mut input = knights(&catalog, 1);
        input["idempotencyKey"] = json!(key);

        // Act
        let body = app.place_order(&customer.token, input).await;

        // Assert
        assert_bad_input(&body, "idempotencyKey");
    }
    assert_eq!(app.count_rows("orders").await, 0);
    let mut input = knights(&catalog, 1);
    input["idempotencyKey"] = json!("k".repeat(64));
    placed(&app.place_order(&customer.token, input).await);
}

#[tokio::test]
async fn the_owner_sees_their_order() {
    // Arrange
    let app = spawn_app().await;
    let customer = app.register(&unique_username("owner")).await;
    let order = app.place_simple_order(&customer.token, 10).await;

    // Act
    let body = app.order(&customer.token, &id_of(&order)).await;

    // Assert
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["order"], order, "reading an order gives back what placing it returned");
    assert_eq!((cents(&order["subtotal"]), cents(&order["discount"]), cents(&order["total"])), (12500, 625, 11875));
}

#[tokio::test]
async fn another_customers_order_is_not_found() {
    // Arrange
    let app = spawn_app().await;
    let owner = app.register(&unique_username("owner")).await;
    let snoop = app.register(&unique_username("snoop")).await;
    let order = app.place_simple_order(&owner.token, 1).await;

    // Act
    let body = app.order(&snoop.token, &id_of(&order)).await;

    // Assert
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    assert!(body["data"]["order"].is_null(), "{body}");
    let unknown = app.order(&snoop.token, &Uuid::new_v4().to_string()).await;
    assert_eq!(body["errors"][0]["message"], unknown["errors"][0]["message"], "indistinguishable from an unknown id");
}

#[tokio::test]
async fn unknown_and_garbage_order_ids_are_not_found() {
    // Arrange
    let app = spawn_app().await;
    let customer = app.register(&unique_username("looker")).await;

    for id in [Uuid::new_v4().to_string(), "garbage".to_owned(), String::new(), "1 OR 1=1".to_owned()] {
        // Act
        let body = app.order(&customer.token, &id).await;

        // Assert
        assert_eq!(error_code(&body), "NOT_FOUND", "{id:?}: {body}");
        assert!(body["data"]["order"].is_null(), "{body}");
    }
}

#[tokio::test]
async fn order_without_a_token_is_unauthenticated() {
    let app = spawn_app().await;
    let customer = app.register(&unique_username("owner")).await;
    let order = app.place_simple_order(&customer.token, 1).await;

    let body = app.graphql(None, "query($id: ID!) { order(id: $id) { id } }", json!({"id": id_of(&order)})).await;

    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert!(body["data"].is_null() || body["data"]["order"].is_null(), "{body}");
}

#[tokio::test]
async fn the_factory_sees_any_order() {
    // Arrange
    let app = spawn_app().await;
    let customer = app.register(&unique_username("owner")).await;
    let order = app.place_simple_order(&customer.token, 2).await;
    let factory = app.factory_token().await;

    // Act
    let body = app.order(&factory, &id_of(&order)).await;

    // Assert
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["order"], order);
    assert_eq!(body["data"]["order"]["customer"]["id"], json!(customer.id));
}

#[tokio::test]
async fn my_orders_pages_newest_first_and_visits_each_order_exactly_once() {
    // Arrange
    let app = spawn_app().await;
    let customer = app.register(&unique_username("pager")).await;
    let mut placed_ids = Vec::new();
    for quantity in 1..=5 {
        placed_ids.push(id_of(&app.place_simple_order(&customer.token, quantity).await));
    }
    let newest_first: Vec<String> = placed_ids.iter().rev().cloned().collect();

    // Act
    let mut pages = Vec::new();
    let mut after = Value::Null;
    loop {
        let body = app.my_orders(&customer.token, json!(2), after.clone(), Value::Null).await;
        let connection = body["data"]["myOrders"].clone();
        assert!(connection.is_object(), "myOrders failed: {body}");
        pages.push(connection.clone());
        if connection["pageInfo"]["hasNextPage"] == json!(false) {
            break;
        }
        assert!(pages.len() < 5, "pagination must end: {pages:?}");
        after = connection["pageInfo"]["endCursor"].clone();
    }

    // Assert
    let page_ids: Vec<Vec<String>> = pages
        .iter()
        .map(|page| {
            page["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].as_str().unwrap().to_owned()).collect()
        })
        .collect();
    assert_eq!(page_ids, vec![newest_first[0..2].to_vec(), newest_first[2..4].to_vec(), newest_first[4..5].to_vec()]);
    assert_eq!(
        pages.iter().map(|p| p["pageInfo"]["hasNextPage"].clone()).collect::<Vec<_>>(),
        vec![json!(true), json!(true), json!(false)]
    );
    for page in &pages {
        let edges = page["edges"].as_array().unwrap();
        assert_eq!(
            page["pageInfo"]["endCursor"],
            edges.last().unwrap()["cursor"],
            "endCursor is the last edge's cursor"
        );
    }
    // The default page holds them all, in the same order.
    let all = app.my_orders(&customer.token, Value::Null, Value::Null, Value::Null).await;
    let all_ids: Vec<&str> = all["data"]["myOrders"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(all_ids, newest_first.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(all["data"]["myOrders"]["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn my_orders_filters_by_status() {
    // Arrange
    let app = spawn_app().await;
    let customer = app.register(&unique_username("filterer")).await;
    let first = id_of(&app.place_simple_order(&customer.token, 1).await);
    let second = id_of(&app.place_simple_order(&customer.token, 2).await);
    let third = id_of(&app.place_simple_order(&customer.token, 3).await);
    let cancelled = app.cancel_order(&customer.token, &second).await;
    assert_eq!(cancelled["data"]["cancelOrder"]["status"], "CANCELLED", "{cancelled}");

    // Act
    let pending = app.my_orders(&customer.token, json!(10), Value::Null, json!("PENDING")).await;
    let cancelled = app.my_orders(&customer.token, json!(10), Value::Null, json!("CANCELLED")).await;
    let shipped = app.my_orders(&customer.token, json!(10), Value::Null, json!("SHIPPED")).await;

    // Assert
    let ids = |body: &Value| -> Vec<String> {
        body["data"]["myOrders"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&pending), vec![third, first]);
    assert_eq!(ids(&cancelled), vec![second]);
    assert_eq!(ids(&shipped), Vec::<String>::new());
    for edge in pending["data"]["myOrders"]["edges"].as_array().unwrap() {
        assert_eq!(edge["node"]["status"], "PENDING");
    }
}

#[tokio::test]
async fn my_orders_accepts_a_large_first_and_caps_it() {
    // Arrange
    let app = spawn_app().await;
    let customer = app.register(&unique_username("bigpage")).await;
    for quantity in 1..=3 {
        app.place_simple_order(&customer.token, quantity).await;
    }

    // Act
    let body = app.my_orders(&customer.token, json!(500), Value::Null, Value::Null).await;

    // Assert
    assert!(body.get("errors").is_none(), "first: 500 is accepted (and capped at 100): {body}");
    assert_eq!(body["data"]["myOrders"]["edges"].as_array().unwrap().len(), 3);
    assert_eq!(body["data"]["myOrders"]["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn a_full_page_of_orders_with_every_field_fits_the_query_limits() {
    // Arrange
    let app = spawn_app().await;
    let customer = app.register(&unique_username("fullpage")).await;
    let order = app.place_simple_order(&customer.token, 1).await;

    // Act
    let body = app
        .graphql(
            Some(&customer.token),
            &format!("{{ myOrders(first: 100) {{ edges {{ node {{ {ORDER_FIELDS} }} }} }} }}"),
            json!({}),
        )
        .await;

    // Assert
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["myOrders"]["edges"][0]["node"], order);
}

#[tokio::test]
async fn my_orders_refuses_a_negative_first_and_a_garbage_cursor() {
    // Arrange
    let app = spawn_app().await;
    let customer = app.register(&unique_username("badpager")).await;
    app.place_simple_order(&customer.token, 1).await;

    // Act
    let negative = app.my_orders(&customer.token, json!(-1), Value::Null, Value::Null).await;
    let garbage = app.my_orders(&customer.token, json!(5), json!("garbage"), Value::Null).await;

    // Assert
    assert_eq!(error_code(&negative), "BAD_USER_INPUT", "{negative}");
    assert_eq!(error_field(&negative), "first", "{negative}");
    assert_eq!(error_code(&garbage), "BAD_USER_INPUT", "{garbage}");
    assert_eq!(error_field(&garbage), "after", "{garbage}");
}

#[tokio::test]
async fn my_orders_never_shows_another_customers_orders() {
    // Arrange
    let app = spawn_app().await;
    let alice = app.register(&unique_username("alice")).await;
    let bob = app.register(&unique_username("bob")).await;
    let alice_orders =
        [id_of(&app.place_simple_order(&alice.token, 1).await), id_of(&app.place_simple_order(&alice.token, 2).await)];
    let bob_order = id_of(&app.place_simple_order(&bob.token, 3).await);

    // Act
    let alices = app.my_orders(&alice.token, json!(100), Value::Null, Value::Null).await;
    let bobs = app.my_orders(&bob.token, json!(100), Value::Null, Value::Null).await;
    let fresh = app.register(&unique_username("carol")).await;
    let carols = app.my_order_ids(&fresh.token).await;

    // Assert
    let ids_and_owners = |body: &Value| -> Vec<(String, String)> {
        body["data"]["myOrders"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|e| {
                (e["node"]["id"].as_str().unwrap().to_owned(), e["node"]["customer"]["id"].as_str().unwrap().to_owned())
            })
            .collect()
    };
    assert_eq!(
        ids_and_owners(&alices),
        vec![(alice_orders[1].clone(), alice.id.clone()), (alice_orders[0].clone(), alice.id.clone())]
    );
    assert_eq!(ids_and_owners(&bobs), vec![(bob_order, bob.id.clone())]);
    assert_eq!(carols, Vec::<String>::new());
}

#[tokio::test]
async fn prices_are_frozen_on_an_order_when_it_is_placed() {
    // Arrange: 10 knights at 12.50: 125.00, 5% off = 6.25.
    let app = spawn_app().await;
    let customer = app.register(&unique_username("frozen")).await;
    let catalog = app.catalog().await;
    assert_eq!(catalog.figurines["FIG-KNIGHT"].1, 1250);
    let order = app.place_simple_order(&customer.token, 10).await;
    let order_id = id_of(&order);

    // Act: the catalog price changes underneath.
    let db = Database::connect(&app.database_url).await.expect("connect to the test database");
    db.execute_unprepared("UPDATE figurines SET unit_price_cents = 9999 WHERE sku = 'FIG-KNIGHT'")
        .await
        .expect("price change");
    let read_back = app.order(&customer.token, &order_id).await;
    let listed = app
        .graphql(
            Some(&customer.token),
            "{ myOrders { edges { node { total { cents } lines { unitPrice { cents } } } } } }",
            json!({}),
        )
        .await;
    // The catalog is served from memory; the change reaches the server by notification
    // (PostgreSQL) or at the next request (SQLite), so the new quote may take a moment.
    let quote = app.quote_once_unit_price_is(knights(&catalog, 10), 9999).await;

    // Assert
    let read_back = &read_back["data"]["order"];
    assert_eq!(read_back, &order, "the order is unchanged: {read_back}");
    let line = &read_back["lines"][0];
    assert_eq!(
        (cents(&line["unitPrice"]), cents(&line["subtotal"]), cents(&line["discount"]), cents(&line["total"])),
        (1250, 12500, 625, 11875)
    );
    assert_eq!(
        (cents(&read_back["subtotal"]), cents(&read_back["discount"]), cents(&read_back["total"])),
        (12500, 625, 11875)
    );
    assert_eq!(cents(&read_back["appliedDiscounts"][0]["amount"]), 625);
    let node = &listed["data"]["myOrders"]["edges"][0]["node"];
    assert_eq!((cents(&node["total"]), cents(&node["lines"][0]["unitPrice"])), (11875, 1250), "{listed}");
    // A new quote uses today's price: 10 x 99.99 = 999.90, 5% = 49.995 -> 49.99.
    let quote = &quote["data"]["quote"];
    assert_eq!(cents(&quote["lines"][0]["unitPrice"]), 9999, "{quote}");
    assert_eq!((cents(&quote["subtotal"]), cents(&quote["discount"]), cents(&quote["total"])), (99990, 4999, 94991));
}
