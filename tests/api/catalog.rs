//! `figurines`, `packages` and `quote`: the catalog and the pricing rules (contract section 4,
//! "Catalog and pricing").

use std::collections::HashMap;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Catalog, error_code, error_field, spawn_app, unique_username};

/// The decimal text the contract expects for `cents`, e.g. 1250 -> "12.50".
fn amount_of(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Checks one `Money` object: integer cents, the matching decimal text, EUR.
fn assert_money(money: &Value, what: &str) -> i64 {
    let cents = money["cents"].as_i64().unwrap_or_else(|| panic!("{what}: cents missing in {money}"));
    assert_eq!(money["amount"], json!(amount_of(cents)), "{what}: amount must match cents");
    assert_eq!(money["currency"], json!("EUR"), "{what}: currency");
    cents
}

fn cents(value: &Value) -> i64 {
    value["cents"].as_i64().unwrap_or_else(|| panic!("expected a Money with cents: {value}"))
}

/// The quote object of a successful `quote` response.
fn quote_of(body: &Value) -> &Value {
    let quote = &body["data"]["quote"];
    assert!(quote.is_object(), "quote failed: {body}");
    assert!(body.get("errors").is_none(), "quote answered with errors: {body}");
    quote
}

/// Every sum a quote states must add up: per line and over the order.
fn assert_quote_adds_up(quote: &Value) {
    let lines = quote["lines"].as_array().expect("lines");
    for line in lines {
        let quantity = line["quantity"].as_i64().unwrap();
        assert_eq!(
            cents(&line["subtotal"]),
            cents(&line["unitPrice"]) * quantity,
            "line subtotal = unit x quantity: {line}"
        );
        assert_eq!(cents(&line["total"]), cents(&line["subtotal"]) - cents(&line["discount"]), "line total: {line}");
    }
    let sum = |field: &str| lines.iter().map(|line| cents(&line[field])).sum::<i64>();
    assert_eq!(cents(&quote["subtotal"]), sum("subtotal"), "order subtotal = sum of lines");
    assert_eq!(cents(&quote["discount"]), sum("discount"), "order discount = sum of lines");
    assert_eq!(cents(&quote["total"]), sum("total"), "order total = sum of lines");
    assert_eq!(
        cents(&quote["total"]),
        cents(&quote["subtotal"]) - cents(&quote["discount"]),
        "total = subtotal - discount"
    );
    let applied: i64 = quote["appliedDiscounts"].as_array().unwrap().iter().map(|d| cents(&d["amount"])).sum();
    assert_eq!(applied, cents(&quote["discount"]), "appliedDiscounts add up to the discount");
    assert_eq!(quote["subtotal"]["amount"], json!(amount_of(cents(&quote["subtotal"]))));
    assert_eq!(quote["total"]["amount"], json!(amount_of(cents(&quote["total"]))));
}

/// Asserts a `BAD_USER_INPUT` naming `field`, and that nothing was answered besides.
fn assert_bad_input(body: &Value, field: &str) {
    assert_eq!(error_code(body), "BAD_USER_INPUT", "{body}");
    assert_eq!(error_field(body), field, "{body}");
    assert!(body["data"].is_null() || body["data"]["quote"].is_null(), "no quote on bad input: {body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or("");
    assert!(!message.trim().is_empty(), "the message says what is wrong: {body}");
}

fn knight(catalog: &Catalog, quantity: i64) -> Value {
    json!({"figurineId": catalog.figurine("FIG-KNIGHT"), "quantity": quantity})
}

#[tokio::test]
async fn figurines_lists_at_least_eight_complete_figurines_priced_in_euro() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let body = app
        .graphql(None, "{ figurines { id sku name description unitPrice { cents amount currency } } }", json!({}))
        .await;

    // Assert
    let figurines = body["data"]["figurines"].as_array().unwrap_or_else(|| panic!("figurines failed: {body}"));
    assert!(figurines.len() >= 8, "at least 8 figurines are seeded, got {}", figurines.len());
    let mut skus = std::collections::HashSet::new();
    let mut ids = std::collections::HashSet::new();
    for figurine in figurines {
        for field in ["id", "sku", "name", "description"] {
            let text = figurine[field].as_str().unwrap_or("");
            assert!(!text.trim().is_empty(), "{field} must not be empty: {figurine}");
        }
        assert!(skus.insert(figurine["sku"].as_str().unwrap()), "SKUs are unique: {figurine}");
        assert!(ids.insert(figurine["id"].as_str().unwrap()), "ids are unique: {figurine}");
        let cents = assert_money(&figurine["unitPrice"], "unitPrice");
        assert!(cents > 0, "a figurine costs something: {figurine}");
    }
    let knight = figurines.iter().find(|f| f["sku"] == "FIG-KNIGHT").expect("FIG-KNIGHT is seeded");
    assert_eq!(knight["unitPrice"], json!({"cents": 1250, "amount": "12.50", "currency": "EUR"}));
}

#[tokio::test]
async fn packages_list_at_least_three_whose_regular_price_is_the_sum_of_their_items() {
    // Arrange
    let app = spawn_app().await;
    let catalog = app.catalog().await;
    let unit_price_by_id: HashMap<&str, i64> =
        catalog.figurines.values().map(|(id, cents)| (id.as_str(), *cents)).collect();

    // Act
    let body = app
        .graphql(
            None,
            "{ packages { id code name description price { cents amount currency } regularPrice { cents amount currency } \
               savings { cents amount currency } items { quantity figurine { id sku unitPrice { cents } } } } }",
            json!({}),
        )
        .await;

    // Assert
    let packages = body["data"]["packages"].as_array().unwrap_or_else(|| panic!("packages failed: {body}"));
    assert!(packages.len() >= 3, "at least 3 packages are seeded, got {}", packages.len());
    for package in packages {
        for field in ["id", "code", "name", "description"] {
            assert!(!package[field].as_str().unwrap_or("").trim().is_empty(), "{field} must not be empty: {package}");
        }
        let items = package["items"].as_array().unwrap();
        assert!(!items.is_empty(), "a package holds figurines: {package}");
        let mut expected_regular = 0;
        for item in items {
            let quantity = item["quantity"].as_i64().unwrap();
            assert!(quantity >= 1, "{item}");
            let unit = cents(&item["figurine"]["unitPrice"]);
            assert_eq!(
                Some(&unit),
                unit_price_by_id.get(item["figurine"]["id"].as_str().unwrap()),
                "item figurine is a catalog figurine"
            );
            expected_regular += quantity * unit;
        }
        let price = assert_money(&package["price"], "price");
        let regular = assert_money(&package["regularPrice"], "regularPrice");
        let savings = assert_money(&package["savings"], "savings");
        assert_eq!(regular, expected_regular, "regularPrice = sum of item quantity x unit price: {package}");
        assert_eq!(savings, regular - price, "savings = regularPrice - price: {package}");
        assert!(savings > 0, "a package is cheaper than its items: {package}");
    }
    // Knight 12.50 + wizard 14.95 + archer 11.50 + cleric 12.95 + rogue 11.95 = 63.85, sold at 54.90.
    let party = packages.iter().find(|p| p["code"] == "PKG-PARTY").expect("PKG-PARTY is seeded");
    assert_eq!((cents(&party["price"]), cents(&party["regularPrice"]), cents(&party["savings"])), (5490, 6385, 895));
}

#[tokio::test]
async fn quote_is_public_and_gives_no_discount_below_ten_figurines() {
    // Arrange
    let app = spawn_app().await;
    let catalog = app.catalog().await;

    // Act
    let body = app.quote(None, json!({"items": [knight(&catalog, 9)]})).await;

    // Assert
    let quote = quote_of(&body);
    assert_quote_adds_up(quote);
    assert_eq!(quote["lines"].as_array().unwrap().len(), 1);
    let line = &quote["lines"][0];
    assert_eq!(line["kind"], "FIGURINE");
    assert_eq!(line["figurine"]["sku"], "FIG-KNIGHT");
    assert!(line["package"].is_null(), "a figurine line names no package: {line}");
    assert_eq!(
        (cents(&line["unitPrice"]), cents(&line["subtotal"]), cents(&line["discount"]), cents(&line["total"])),
        (1250, 11250, 0, 11250)
    );
    assert_eq!((cents(&quote["subtotal"]), cents(&quote["discount"]), cents(&quote["total"])), (11250, 0, 11250));
    assert_eq!(quote["appliedDiscounts"], json!([]));
}

#[tokio::test]
async fn quote_bulk_tiers_switch_exactly_at_ten_twenty_five_and_fifty_figurines() {
    // Arrange
    let app = spawn_app().await;
    let catalog = app.catalog().await;
    let unit = catalog.figurines["FIG-KNIGHT"].1;
    let cases = [
        (9, None, 0),
        (10, Some("BULK_5"), 5),
        (24, Some("BULK_5"), 5),
        (25, Some("BULK_10"), 10),
        (49, Some("BULK_10"), 10),
        (50, Some("BULK_15"), 15),
        (1000, Some("BULK_15"), 15),
    ];

    for (quantity, code, percent) in cases {
        // Act
        let body = app.quote(None, json!({"items": [knight(&catalog, quantity)]})).await;

        // Assert
        let quote = quote_of(&body);
        assert_quote_adds_up(quote);
        let subtotal = unit * quantity;
        let discount = subtotal * percent / 100;
        assert_eq!(
            (cents(&quote["subtotal"]), cents(&quote["discount"]), cents(&quote["total"])),
            (subtotal, discount, subtotal - discount),
            "{quantity} knights"
        );
        let applied = quote["appliedDiscounts"].as_array().unwrap();
        match code {
            None => assert!(applied.is_empty(), "{quantity} knights: no discount, got {applied:?}"),
            Some(code) => {
                assert_eq!(applied.len(), 1, "{quantity} knights: one tier applies: {applied:?}");
                assert_eq!(applied[0]["code"], code, "{quantity} knights");
                assert_eq!(cents(&applied[0]["amount"]), discount, "{quantity} knights");
                assert!(!applied[0]["description"].as_str().unwrap().trim().is_empty(), "a discount describes itself");
            }
        }
    }
    // Known figures: 10 x 12.50 = 125.00, 5% = 6.25; 50 x 12.50 = 625.00, 15% = 93.75.
    let ten = app.quote(None, json!({"items": [knight(&catalog, 10)]})).await;
    assert_eq!((cents(&ten["data"]["quote"]["subtotal"]), cents(&ten["data"]["quote"]["discount"])), (12500, 625));
    let fifty = app.quote(None, json!({"items": [knight(&catalog, 50)]})).await;
    assert_eq!((cents(&fifty["data"]["quote"]["subtotal"]), cents(&fifty["data"]["quote"]["discount"])), (62500, 9375));
}

#[tokio::test]
async fn bulk_tier_counts_the_figurines_of_every_figurine_line() {
    // Arrange: 5 knights and 5 wizards are 10 figurines, though neither line has 10.
    let app = spawn_app().await;
    let catalog = app.catalog().await;
    let input = json!({"items": [knight(&catalog, 5), {"figurineId": catalog.figurine("FIG-WIZARD"), "quantity": 5}]});

    // Act
    let body = app.quote(None, input).await;

    // Assert
    let quote = quote_of(&body);
    assert_quote_adds_up(quote);
    let knights = 5 * catalog.figurines["FIG-KNIGHT"].1;
    let wizards = 5 * catalog.figurines["FIG-WIZARD"].1;
    assert_eq!(cents(&quote["lines"][0]["discount"]), knights * 5 / 100);
    assert_eq!(cents(&quote["lines"][1]["discount"]), wizards * 5 / 100);
    assert_eq!(quote["appliedDiscounts"][0]["code"], "BULK_5");
}

#[tokio::test]
async fn each_line_discount_is_rounded_down_on_its_own() {
    // Arrange: 9 knights (112.50 -> 5% = 5.625) and 1 skeleton (8.95 -> 5% = 0.4475).
    // Floored per line: 5.62 + 0.44 = 6.06; flooring the sum instead would give 6.07.
    let app = spawn_app().await;
    let catalog = app.catalog().await;
    let input =
        json!({"items": [knight(&catalog, 9), {"figurineId": catalog.figurine("FIG-SKELETON"), "quantity": 1}]});
    let knight_subtotal = 9 * catalog.figurines["FIG-KNIGHT"].1;
    let skeleton_subtotal = catalog.figurines["FIG-SKELETON"].1;
    let expected = [knight_subtotal * 5 / 100, skeleton_subtotal * 5 / 100];

    // Act
    let body = app.quote(None, input).await;

    // Assert
    let quote = quote_of(&body);
    assert_quote_adds_up(quote);
    assert_eq!([cents(&quote["lines"][0]["discount"]), cents(&quote["lines"][1]["discount"])], expected);
    assert_eq!(expected, [562, 44], "the seeded prices give these fractions");
    assert_eq!(cents(&quote["discount"]), 606, "sum of floored lines, not floor of the sum (607)");
    assert_ne!(cents(&quote["discount"]), (knight_subtotal + skeleton_subtotal) * 5 / 100);
    assert_eq!(quote["appliedDiscounts"][0]["code"], "BULK_5");
    assert_eq!(cents(&quote["appliedDiscounts"][0]["amount"]), 606);
    assert_eq!(cents(&quote["total"]), knight_subtotal + skeleton_subtotal - 606);
}

#[tokio::test]
async fn package_lines_neither_count_toward_the_bulk_discount_nor_get_it() {
    // Arrange: 9 knights and two crypt hordes (20 skeletons inside) stay below the tier.
    let app = spawn_app().await;
    let catalog = app.catalog().await;
    let crypt = catalog.packages["PKG-CRYPT"].1;

    // Act
    let below = app.quote(None, json!({"items": [knight(&catalog, 9)], "packages": [{"packageId": catalog.package("PKG-CRYPT"), "quantity": 2}]})).await;
    let above = app.quote(None, json!({"items": [knight(&catalog, 10)], "packages": [{"packageId": catalog.package("PKG-CRYPT"), "quantity": 2}]})).await;

    // Assert
    let below = quote_of(&below);
    assert_quote_adds_up(below);
    assert_eq!(below["appliedDiscounts"], json!([]));
    assert_eq!(cents(&below["discount"]), 0);
    assert_eq!(cents(&below["subtotal"]), 9 * 1250 + 2 * crypt);

    let above = quote_of(&above);
    assert_quote_adds_up(above);
    let package_line = &above["lines"][1];
    assert_eq!(package_line["kind"], "PACKAGE");
    assert_eq!(package_line["package"]["code"], "PKG-CRYPT");
    assert!(package_line["figurine"].is_null(), "a package line names no figurine: {package_line}");
    assert_eq!(
        (
            cents(&package_line["unitPrice"]),
            cents(&package_line["subtotal"]),
            cents(&package_line["discount"]),
            cents(&package_line["total"])
        ),
        (crypt, 2 * crypt, 0, 2 * crypt)
    );
    assert_eq!(cents(&above["discount"]), 625, "only the 10 knights are discounted");
    assert_eq!(cents(&above["total"]), 12500 - 625 + 2 * crypt);
    assert_eq!(above["appliedDiscounts"][0]["code"], "BULK_5");
    assert_eq!(cents(&above["appliedDiscounts"][0]["amount"]), 625);
}

#[tokio::test]
async fn duplicate_lines_merge_with_figurines_first_in_order_of_first_appearance() {
    // Arrange
    let app = spawn_app().await;
    let catalog = app.catalog().await;
    let line = |sku: &str, quantity: i64| json!({"figurineId": catalog.figurine(sku), "quantity": quantity});
    let package = |code: &str, quantity: i64| json!({"packageId": catalog.package(code), "quantity": quantity});
    let input = json!({
        "packages": [package("PKG-CRYPT", 1), package("PKG-PARTY", 1), package("PKG-CRYPT", 2)],
        "items": [line("FIG-WIZARD", 2), line("FIG-KNIGHT", 3), line("FIG-WIZARD", 4)],
    });

    // Act
    let body = app.quote(None, input).await;

    // Assert
    let quote = quote_of(&body);
    assert_quote_adds_up(quote);
    let shape: Vec<(String, String, i64)> = quote["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let name = if l["kind"] == "FIGURINE" { &l["figurine"]["sku"] } else { &l["package"]["code"] };
            (l["kind"].as_str().unwrap().to_owned(), name.as_str().unwrap().to_owned(), l["quantity"].as_i64().unwrap())
        })
        .collect();
    let expected: Vec<(String, String, i64)> = [
        ("FIGURINE", "FIG-WIZARD", 6),
        ("FIGURINE", "FIG-KNIGHT", 3),
        ("PACKAGE", "PKG-CRYPT", 3),
        ("PACKAGE", "PKG-PARTY", 1),
    ]
    .into_iter()
    .map(|(k, n, q)| (k.to_owned(), n.to_owned(), q))
    .collect();
    assert_eq!(shape, expected);
    // 9 figurines: no discount, whatever the packages hold.
    assert_eq!(cents(&quote["discount"]), 0);
    let expected_subtotal = 6 * catalog.figurines["FIG-WIZARD"].1
        + 3 * 1250
        + 3 * catalog.packages["PKG-CRYPT"].1
        + catalog.packages["PKG-PARTY"].1;
    assert_eq!(cents(&quote["subtotal"]), expected_subtotal);
}

#[tokio::test]
async fn merged_lines_reach_the_bulk_tier_together() {
    // Arrange: 4 + 6 knights on two lines are one line of 10.
    let app = spawn_app().await;
    let catalog = app.catalog().await;

    // Act
    let body = app.quote(None, json!({"items": [knight(&catalog, 4), knight(&catalog, 6)]})).await;

    // Assert
    let quote = quote_of(&body);
    assert_eq!(quote["lines"].as_array().unwrap().len(), 1);
    assert_eq!(quote["lines"][0]["quantity"], 10);
    assert_eq!((cents(&quote["subtotal"]), cents(&quote["discount"]), cents(&quote["total"])), (12500, 625, 11875));
}

#[tokio::test]
async fn quote_of_an_empty_order_is_bad_input_on_items() {
    let app = spawn_app().await;

    let empty_lists = app.quote(None, json!({"items": [], "packages": []})).await;
    let no_lists = app.quote(None, json!({})).await;

    assert_bad_input(&empty_lists, "items");
    assert_bad_input(&no_lists, "items");
}

#[tokio::test]
async fn quantities_outside_one_to_a_thousand_are_bad_input_on_their_line() {
    // Arrange
    let app = spawn_app().await;
    let catalog = app.catalog().await;

    for quantity in [0, -1, 1001] {
        // Act
        let item = app.quote(None, json!({"items": [knight(&catalog, quantity)]})).await;
        let package = app
            .quote(None, json!({"packages": [{"packageId": catalog.package("PKG-PARTY"), "quantity": quantity}]}))
            .await;

        // Assert
        assert_bad_input(&item, "items[0].quantity");
        assert_bad_input(&package, "packages[0].quantity");
    }
    // The bounds themselves are fine.
    quote_of(&app.quote(None, json!({"items": [knight(&catalog, 1)]})).await);
    quote_of(&app.quote(None, json!({"items": [knight(&catalog, 1000)]})).await);
}

#[tokio::test]
async fn merged_quantity_over_a_thousand_is_bad_input_on_the_line_that_exceeds_it() {
    let app = spawn_app().await;
    let catalog = app.catalog().await;

    let body = app.quote(None, json!({"items": [knight(&catalog, 600), knight(&catalog, 401)]})).await;

    assert_bad_input(&body, "items[1].quantity");
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_bad_input_on_their_id_field() {
    // Arrange
    let app = spawn_app().await;
    let catalog = app.catalog().await;
    let unknown = Uuid::new_v4().to_string();

    // Act
    let unknown_figurine = app.quote(None, json!({"items": [{"figurineId": unknown, "quantity": 1}]})).await;
    let unknown_second =
        app.quote(None, json!({"items": [knight(&catalog, 1), {"figurineId": unknown, "quantity": 1}]})).await;
    let unknown_package = app.quote(None, json!({"packages": [{"packageId": unknown, "quantity": 1}]})).await;
    let malformed_package = app.quote(None, json!({"packages": [{"packageId": "not-a-package", "quantity": 1}]})).await;
    let malformed_figurine = app.quote(None, json!({"items": [{"figurineId": "42", "quantity": 1}]})).await;
    // A package id is not a figurine id, and the other way round.
    let package_as_figurine =
        app.quote(None, json!({"items": [{"figurineId": catalog.package("PKG-PARTY"), "quantity": 1}]})).await;

    // Assert
    assert_bad_input(&unknown_figurine, "items[0].figurineId");
    assert_bad_input(&unknown_second, "items[1].figurineId");
    assert_bad_input(&unknown_package, "packages[0].packageId");
    assert_bad_input(&malformed_package, "packages[0].packageId");
    assert_bad_input(&malformed_figurine, "items[0].figurineId");
    assert_bad_input(&package_as_figurine, "items[0].figurineId");
}

#[tokio::test]
async fn more_than_fifty_distinct_lines_is_bad_input_on_items() {
    let app = spawn_app().await;
    let items: Vec<Value> = (0..51).map(|_| json!({"figurineId": Uuid::new_v4().to_string(), "quantity": 1})).collect();

    let body = app.quote(None, json!({"items": items})).await;

    assert_bad_input(&body, "items");
}

#[tokio::test]
async fn a_quantity_that_is_not_an_int_is_bad_input_not_a_server_error() {
    // Arrange
    let app = spawn_app().await;
    let catalog = app.catalog().await;
    let query = "query($id: ID!, $quantity: Int!) { quote(input: {items: [{figurineId: $id, quantity: $quantity}]}) { total { cents } } }";

    for quantity in [json!("abc"), json!(3_000_000_000_i64), json!(1.5)] {
        // Act (`graphql` asserts the HTTP status is 200, so no 5xx)
        let body = app.graphql(None, query, json!({"id": catalog.figurine("FIG-KNIGHT"), "quantity": quantity})).await;

        // Assert
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{quantity}: {body}");
        assert!(body["data"].is_null(), "{quantity}: nothing is priced: {body}");
    }
    // Inline literals out of range are refused the same way.
    let literal = app
        .graphql(
            None,
            &format!(
                "{{ quote(input: {{items: [{{figurineId: \"{}\", quantity: 3000000000}}]}}) {{ total {{ cents }} }} }}",
                catalog.figurine("FIG-KNIGHT")
            ),
            json!({}),
        )
        .await;
    assert_eq!(error_code(&literal), "BAD_USER_INPUT", "{literal}");
}

#[tokio::test]
async fn quoting_stores_nothing() {
    // Arrange
    let app = spawn_app().await;
    let customer = app.register(&unique_username("quoter")).await;
    let catalog = app.catalog().await;

    // Act: quote as the customer, and anonymously, several times.
    for _ in 0..3 {
        quote_of(&app.quote(Some(&customer.token), json!({"items": [knight(&catalog, 12)]})).await);
        quote_of(&app.quote(None, json!({"items": [knight(&catalog, 12)]})).await);
    }

    // Assert
    assert_eq!(app.my_order_ids(&customer.token).await, Vec::<String>::new());
    for table in ["orders", "order_lines", "order_discounts", "order_events"] {
        assert_eq!(app.count_rows(table).await, 0, "{table} stays empty");
    }
}

#[tokio::test]
async fn a_catalog_change_in_the_database_reaches_every_instance() {
    // Arrange: two instances on one database (one on SQLite, which has one server process).
    let (first, prefix) = crate::helpers::spawn_app_on_redis(&[]).await;
    let second = if crate::helpers::uses_sqlite() {
        None
    } else {
        Some(crate::helpers::spawn_second_instance(&first, &prefix).await)
    };
    let catalog = first.catalog().await;
    let knights = json!({"items": [{"figurineId": catalog.figurine("FIG-KNIGHT"), "quantity": 1}]});
    for app in std::iter::once(&first).chain(second.as_ref()) {
        assert_eq!(app.quote_once_unit_price_is(knights.clone(), 1250).await["errors"], Value::Null);
    }

    // Act: an operator changes a price with SQL.
    let db = sea_orm::Database::connect(&first.database_url).await.expect("connect to the test database");
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        "UPDATE figurines SET unit_price_cents = 1300 WHERE sku = 'FIG-KNIGHT'",
    )
    .await
    .expect("price change");

    // Assert: every instance quotes and lists the new price.
    for app in std::iter::once(&first).chain(second.as_ref()) {
        app.quote_once_unit_price_is(knights.clone(), 1300).await;
        let fresh = app.catalog().await;
        assert_eq!(fresh.figurines["FIG-KNIGHT"].1, 1300);
    }
}
