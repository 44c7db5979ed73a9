//! How domain values become fields.

use super::*;

/// `cents` as the decimal text `amount` must show.
fn as_amount(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn cents(money: &Value) -> i64 {
    money["cents"].as_i64().expect("cents is an Int")
}

#[tokio::test]
async fn money_shows_the_same_cents_as_an_amount_in_euros() {
    let harness = Harness::new().await;
    let response = harness.run(Caller::Anonymous, "{ figurines { unitPrice { cents amount currency } } }").await;
    let figurines = response["data"]["figurines"].as_array().expect("figurines");
    assert!(!figurines.is_empty());
    for figurine in figurines {
        let price = &figurine["unitPrice"];
        assert!(cents(price) > 0);
        assert_eq!(price["amount"], as_amount(cents(price)));
        assert_eq!(price["currency"], "EUR");
    }
}

#[tokio::test]
async fn a_package_saves_its_regular_price_minus_its_price() {
    let harness = Harness::new().await;
    let query = "{ packages { price { cents } regularPrice { cents } savings { cents amount } } }";
    let response = harness.run(Caller::Anonymous, query).await;
    let packages = response["data"]["packages"].as_array().expect("packages");
    assert!(!packages.is_empty());
    for package in packages {
        let savings = cents(&package["regularPrice"]) - cents(&package["price"]);
        assert_eq!(cents(&package["savings"]), savings);
        assert_eq!(package["savings"]["amount"], as_amount(savings));
    }
}

#[tokio::test]
async fn a_quote_maps_its_lines_and_totals() {
    let harness = Harness::new().await;
    let catalog = harness.state.catalog.current(&harness.state.db).await.expect("a catalog");
    let figurine = &catalog.figurines()[0];
    let query = format!(
        r#"{{ quote(input: {{items: [{{figurineId: "{}", quantity: 10}}]}}) {{
            lines {{ kind quantity figurine {{ sku }} package {{ id }} unitPrice {{ cents }} subtotal {{ cents }} total {{ cents }} }}
            subtotal {{ cents }} discount {{ cents }} total {{ cents }} appliedDiscounts {{ code amount {{ cents }} }}
        }} }}"#,
        figurine.id
    );
    let response = harness.run(Caller::Anonymous, &query).await;
    let quote = &response["data"]["quote"];
    let line = &quote["lines"][0];
    assert_eq!(line["kind"], "FIGURINE");
    assert_eq!(line["quantity"], 10);
    assert_eq!(line["figurine"]["sku"], figurine.sku.as_str());
    assert_eq!(line["package"], Value::Null);
    assert_eq!(cents(&line["unitPrice"]), figurine.unit_price.cents());
    let subtotal = 10 * figurine.unit_price.cents();
    let discount = subtotal * 5 / 100;
    assert_eq!(cents(&line["subtotal"]), subtotal);
    assert_eq!(cents(&quote["discount"]), discount);
    assert_eq!(cents(&quote["total"]), subtotal - discount);
    assert_eq!(quote["appliedDiscounts"][0]["code"], "BULK_5");
    assert_eq!(cents(&quote["appliedDiscounts"][0]["amount"]), discount);
}
