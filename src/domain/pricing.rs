//! The one pricing function behind `quote` and `placeOrder`. Pure: it sees a cart and a
//! price list and returns every amount, so a quote and the order placed from it agree to
//! the cent. The discount rules are data ([`BULK_TIERS`]), not branches.

use std::collections::HashMap;

use uuid::Uuid;

use super::cart::{Cart, CartLine, LineList};
use super::money::Money;

/// A bulk discount tier: with at least `min_quantity` figurines in the order (package lines
/// do not count), every figurine line gets `percent` off, rounded down per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkTier {
    pub min_quantity: u32,
    pub percent: i64,
    pub code: &'static str,
    pub description: &'static str,
}

/// The contract's tiers, highest first: the first tier that the order reaches applies.
pub const BULK_TIERS: [BulkTier; 3] = [
    BulkTier {
        min_quantity: 50,
        percent: 15,
        code: "BULK_15",
        description: "15% off figurines for 50 or more figurines",
    },
    BulkTier {
        min_quantity: 25,
        percent: 10,
        code: "BULK_10",
        description: "10% off figurines for 25 or more figurines",
    },
    BulkTier { min_quantity: 10, percent: 5, code: "BULK_5", description: "5% off figurines for 10 or more figurines" },
];

/// Largest total an order may reach: money leaves the API as a GraphQL `Int` (32 bits).
pub const MAX_TOTAL_CENTS: i64 = i32::MAX as i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Figurine,
    Package,
}

impl LineKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            LineKind::Figurine => "FIGURINE",
            LineKind::Package => "PACKAGE",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "FIGURINE" => Some(LineKind::Figurine),
            "PACKAGE" => Some(LineKind::Package),
            _ => None,
        }
    }
}

/// One priced line. The same shape serves a quote and a stored order line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PricedLine {
    pub kind: LineKind,
    /// The figurine id or the package id, as `kind` says.
    pub item_id: Uuid,
    pub quantity: u32,
    pub unit_price: Money,
    pub subtotal: Money,
    pub discount: Money,
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedDiscount {
    pub code: String,
    pub description: String,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub lines: Vec<PricedLine>,
    pub subtotal: Money,
    pub discount: Money,
    pub total: Money,
    pub applied_discounts: Vec<AppliedDiscount>,
}

/// Current unit prices of the catalog items a cart names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceList {
    pub figurines: HashMap<Uuid, Money>,
    pub packages: HashMap<Uuid, Money>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("is not a known id")]
    UnknownItem { list: LineList, index: usize },
    #[error("the order total is too large; split it into smaller orders")]
    TooLarge,
}

impl PricingError {
    /// The input field the error is about, relative to the order input.
    pub fn field(&self) -> String {
        match *self {
            PricingError::UnknownItem { list, index } => list.id_path(index),
            PricingError::TooLarge => "items".to_owned(),
        }
    }
}

/// The tier an order with `figurine_count` figurines reaches, if any.
pub fn bulk_tier(figurine_count: u32) -> Option<&'static BulkTier> {
    BULK_TIERS.iter().find(|tier| figurine_count >= tier.min_quantity)
}

/// Prices a cart: figurine lines (with the bulk discount) first, then package lines.
pub fn price(cart: &Cart, prices: &PriceList) -> Result<Quote, PricingError> {
    let figurine_count: u32 = cart.figurines.iter().map(|line| line.quantity).sum();
    let tier = bulk_tier(figurine_count);
    let percent = tier.map_or(0, |tier| tier.percent);

    let mut lines = Vec::with_capacity(cart.line_count());
    for line in &cart.figurines {
        let unit = lookup(&prices.figurines, line, LineList::Items)?;
        lines.push(priced(LineKind::Figurine, line, unit, percent)?);
    }
    for line in &cart.packages {
        let unit = lookup(&prices.packages, line, LineList::Packages)?;
        lines.push(priced(LineKind::Package, line, unit, 0)?);
    }

    let sum = |amount: fn(&PricedLine) -> Money| Money::from_cents(lines.iter().map(|l| amount(l).cents()).sum());
    let subtotal = sum(|l| l.subtotal);
    let discount = sum(|l| l.discount);
    if subtotal.cents() > MAX_TOTAL_CENTS {
        return Err(PricingError::TooLarge);
    }
    let applied_discounts = tier
        .filter(|_| discount > Money::ZERO)
        .map(|tier| AppliedDiscount {
            code: tier.code.to_owned(),
            description: tier.description.to_owned(),
            amount: discount,
        })
        .into_iter()
        .collect();
    Ok(Quote {
        subtotal,
        discount,
        total: Money::from_cents(subtotal.cents() - discount.cents()),
        lines,
        applied_discounts,
    })
}

fn lookup(prices: &HashMap<Uuid, Money>, line: &CartLine, list: LineList) -> Result<Money, PricingError> {
    prices.get(&line.id).copied().ok_or(PricingError::UnknownItem { list, index: line.first_index })
}

fn priced(kind: LineKind, line: &CartLine, unit: Money, percent: i64) -> Result<PricedLine, PricingError> {
    let subtotal = unit
        .cents()
        .checked_mul(i64::from(line.quantity))
        .filter(|cents| *cents <= MAX_TOTAL_CENTS)
        .ok_or(PricingError::TooLarge)?;
    // Floor per line, as the contract says: integer division of a non-negative amount.
    let discount = subtotal * percent / 100;
    Ok(PricedLine {
        kind,
        item_id: line.id,
        quantity: line.quantity,
        unit_price: unit,
        subtotal: Money::from_cents(subtotal),
        discount: Money::from_cents(discount),
        total: Money::from_cents(subtotal - discount),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cart::RawCartLine;
    use proptest::prelude::*;

    const A: Uuid = Uuid::from_u128(0xA);
    const B: Uuid = Uuid::from_u128(0xB);
    const P: Uuid = Uuid::from_u128(0xF00);

    fn prices() -> PriceList {
        PriceList {
            figurines: HashMap::from([(A, Money::from_cents(1250)), (B, Money::from_cents(999))]),
            packages: HashMap::from([(P, Money::from_cents(5490))]),
        }
    }

    fn raw(id: Uuid, quantity: i32) -> RawCartLine {
        RawCartLine { id: id.to_string(), quantity }
    }

    fn quote(items: &[RawCartLine], packages: &[RawCartLine]) -> Quote {
        price(&Cart::parse(items, packages).unwrap(), &prices()).unwrap()
    }

    #[test]
    fn tiers_switch_exactly_at_their_boundaries() {
        let expected = [
            (1, None),
            (9, None),
            (10, Some("BULK_5")),
            (24, Some("BULK_5")),
            (25, Some("BULK_10")),
            (49, Some("BULK_10")),
            (50, Some("BULK_15")),
            (1000, Some("BULK_15")),
        ];
        for (count, code) in expected {
            assert_eq!(bulk_tier(count).map(|t| t.code), code, "{count} figurines");
            let q = quote(&[raw(A, count as i32)], &[]);
            assert_eq!(q.applied_discounts.first().map(|d| d.code.as_str()), code, "{count} figurines");
        }
    }

    #[test]
    fn boundary_amounts_are_exact() {
        let q = quote(&[raw(A, 9)], &[]);
        assert_eq!((q.subtotal.cents(), q.discount.cents(), q.total.cents()), (11250, 0, 11250));
        let q = quote(&[raw(A, 10)], &[]);
        assert_eq!((q.subtotal.cents(), q.discount.cents(), q.total.cents()), (12500, 625, 11875));
        let q = quote(&[raw(A, 25)], &[]);
        assert_eq!((q.subtotal.cents(), q.discount.cents(), q.total.cents()), (31250, 3125, 28125));
        let q = quote(&[raw(A, 50)], &[]);
        assert_eq!((q.subtotal.cents(), q.discount.cents(), q.total.cents()), (62500, 9375, 53125));
    }

    #[test]
    fn each_line_discount_is_floored_separately() {
        // 11 x 9.99 = 109.89 -> 5% = 5.4945 -> 5.49; 1 x 12.50 -> 5% = 0.625 -> 0.62.
        let q = quote(&[raw(B, 11), raw(A, 1)], &[]);
        assert_eq!(q.lines[0].discount.cents(), 549);
        assert_eq!(q.lines[1].discount.cents(), 62);
        assert_eq!(q.discount.cents(), 611, "sum of floored lines, not floor of the sum (612)");
        assert_eq!(
            q.applied_discounts,
            vec![AppliedDiscount {
                code: "BULK_5".into(),
                description: BULK_TIERS[2].description.into(),
                amount: Money::from_cents(611),
            }]
        );
    }

    #[test]
    fn package_lines_neither_count_toward_nor_get_the_bulk_discount() {
        let q = quote(&[raw(A, 9)], &[raw(P, 20)]);
        assert!(q.applied_discounts.is_empty());
        assert_eq!(q.discount, Money::ZERO);
        let q = quote(&[raw(A, 10)], &[raw(P, 1)]);
        assert_eq!(q.lines[1].kind, LineKind::Package);
        assert_eq!((q.lines[1].subtotal.cents(), q.lines[1].discount.cents()), (5490, 0));
        assert_eq!(q.discount.cents(), 625);
    }

    #[test]
    fn figurine_lines_come_before_package_lines_in_first_appearance_order() {
        let q = quote(&[raw(B, 1), raw(A, 2), raw(B, 1)], &[raw(P, 1)]);
        let order: Vec<_> = q.lines.iter().map(|l| (l.kind, l.item_id, l.quantity)).collect();
        assert_eq!(order, vec![(LineKind::Figurine, B, 2), (LineKind::Figurine, A, 2), (LineKind::Package, P, 1)]);
    }

    #[test]
    fn unknown_ids_name_the_field_of_their_first_appearance() {
        let cart = Cart::parse(&[raw(A, 1), raw(Uuid::from_u128(9), 1)], &[]).unwrap();
        let err = price(&cart, &prices()).unwrap_err();
        assert_eq!(err.field(), "items[1].figurineId");
        let cart = Cart::parse(&[], &[raw(A, 1)]).unwrap();
        assert_eq!(price(&cart, &prices()).unwrap_err().field(), "packages[0].packageId");
    }

    #[test]
    fn totals_beyond_a_graphql_int_are_refused() {
        let expensive = PriceList { figurines: HashMap::from([(A, Money::from_cents(50_000_000))]), ..prices() };
        let cart = Cart::parse(&[raw(A, 1000)], &[]).unwrap();
        assert_eq!(price(&cart, &expensive).unwrap_err(), PricingError::TooLarge);
    }

    fn any_line() -> impl Strategy<Value = (u8, i32)> {
        (0u8..6, 1i32..=150)
    }

    fn price_list() -> PriceList {
        PriceList {
            figurines: (0..6u128).map(|i| (Uuid::from_u128(i), Money::from_cents(95 + 731 * i as i64))).collect(),
            packages: (0..6u128).map(|i| (Uuid::from_u128(i), Money::from_cents(4990 + 1000 * i as i64))).collect(),
        }
    }

    fn to_raw(lines: &[(u8, i32)]) -> Vec<RawCartLine> {
        lines.iter().map(|&(id, qty)| raw(Uuid::from_u128(id.into()), qty)).collect()
    }

    proptest! {
        #[test]
        fn totals_add_up_and_discount_never_exceeds_subtotal(
            items in prop::collection::vec(any_line(), 0..12),
            packages in prop::collection::vec(any_line(), 0..4),
        ) {
            prop_assume!(!items.is_empty() || !packages.is_empty());
            let Ok(cart) = Cart::parse(&to_raw(&items), &to_raw(&packages)) else { return Ok(()) };
            let q = price(&cart, &price_list()).unwrap();
            prop_assert_eq!(q.total.cents(), q.subtotal.cents() - q.discount.cents());
            prop_assert!(q.discount <= q.subtotal);
            prop_assert!(q.discount >= Money::ZERO);
            prop_assert_eq!(q.subtotal.cents(), q.lines.iter().map(|l| l.subtotal.cents()).sum::<i64>());
            prop_assert_eq!(q.discount.cents(), q.applied_discounts.iter().map(|d| d.amount.cents()).sum::<i64>());
            for line in &q.lines {
                prop_assert_eq!(line.subtotal.cents(), line.unit_price.cents() * i64::from(line.quantity));
                prop_assert_eq!(line.total.cents(), line.subtotal.cents() - line.discount.cents());
            }
        }

        #[test]
        fn merging_is_order_independent(
            items in prop::collection::vec(any_line(), 1..12),
            packages in prop::collection::vec(any_line(), 0..4),
            seed in any::<u64>(),
        ) {
            let mut shuffled = items.clone();
            // A deterministic shuffle driven by the generated seed.
            let n = shuffled.len();
            for i in (1..n).rev() {
                let j = (seed.wrapping_mul(i as u64 + 7) % (i as u64 + 1)) as usize;
                shuffled.swap(i, j);
            }
            let (Ok(one), Ok(two)) = (Cart::parse(&to_raw(&items), &to_raw(&packages)), Cart::parse(&to_raw(&shuffled), &to_raw(&packages))) else {
                return Ok(());
            };
            let (q1, q2) = (price(&one, &price_list()).unwrap(), price(&two, &price_list()).unwrap());
            prop_assert_eq!((q1.subtotal, q1.discount, q1.total), (q2.subtotal, q2.discount, q2.total));
            let mut l1: Vec<_> = q1.lines.iter().map(|l| (l.item_id, l.quantity, l.total)).collect();
            let mut l2: Vec<_> = q2.lines.iter().map(|l| (l.item_id, l.quantity, l.total)).collect();
            l1.sort();
            l2.sort();
            prop_assert_eq!(l1, l2);
            prop_assert_eq!(one.fingerprint(), two.fingerprint());
        }
    }
}
