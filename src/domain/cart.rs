//! What a customer asks for, before it has a price: figurine and package lines, each id
//! once, quantities summed. `quote` and `placeOrder` both start here.

use uuid::Uuid;

/// Bounds of one line's quantity (contract section 4).
pub const QUANTITY_MIN: i32 = 1;
pub const QUANTITY_MAX: i32 = 1000;
/// Bounds of distinct lines in one order, figurine and package lines together.
pub const LINES_MIN: usize = 1;
pub const LINES_MAX: usize = 50;

/// One line as the client sent it, with the id still untrusted text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCartLine {
    pub id: String,
    pub quantity: i32,
}

/// One merged line: an id that parsed, and a quantity within bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartLine {
    pub id: Uuid,
    pub quantity: u32,
    /// Where the id first appeared in the client's list, to point errors at that field.
    pub first_index: usize,
}

/// A valid cart: figurine lines then package lines, each in order of first appearance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cart {
    pub figurines: Vec<CartLine>,
    pub packages: Vec<CartLine>,
}

/// Which list a cart line came from; names the input field in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineList {
    Items,
    Packages,
}

impl LineList {
    fn list_field(self) -> &'static str {
        match self {
            LineList::Items => "items",
            LineList::Packages => "packages",
        }
    }

    fn id_field(self) -> &'static str {
        match self {
            LineList::Items => "figurineId",
            LineList::Packages => "packageId",
        }
    }

    /// The input field path of line `index`'s id, e.g. `items[2].figurineId`.
    pub fn id_path(self, index: usize) -> String {
        format!("{}[{index}].{}", self.list_field(), self.id_field())
    }

    /// The input field path of line `index`'s quantity, e.g. `packages[0].quantity`.
    pub fn quantity_path(self, index: usize) -> String {
        format!("{}[{index}].quantity", self.list_field())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartError {
    #[error("an order needs at least one figurine or package line")]
    Empty,
    #[error("an order may have at most {LINES_MAX} distinct lines")]
    TooManyLines,
    #[error("is not a known id")]
    MalformedId { list: LineList, index: usize },
    #[error("must be between {QUANTITY_MIN} and {QUANTITY_MAX}")]
    Quantity { list: LineList, index: usize },
    #[error("the total quantity of one item must not exceed {QUANTITY_MAX}")]
    MergedQuantity { list: LineList, index: usize },
}

impl CartError {
    /// The input field the error is about, relative to the order input.
    pub fn field(&self) -> String {
        match *self {
            CartError::Empty | CartError::TooManyLines => "items".to_owned(),
            CartError::MalformedId { list, index } => list.id_path(index),
            CartError::Quantity { list, index } | CartError::MergedQuantity { list, index } => {
                list.quantity_path(index)
            }
        }
    }
}

impl Cart {
    pub fn parse(items: &[RawCartLine], packages: &[RawCartLine]) -> Result<Self, CartError> {
        let cart = Cart { figurines: merge(LineList::Items, items)?, packages: merge(LineList::Packages, packages)? };
        match cart.line_count() {
            0 => Err(CartError::Empty),
            n if n > LINES_MAX => Err(CartError::TooManyLines),
            _ => Ok(cart),
        }
    }

    pub fn line_count(&self) -> usize {
        self.figurines.len() + self.packages.len()
    }

    /// A canonical text of what was asked for, independent of how the client ordered or
    /// split its lines; two requests with equal fingerprints ask for the same thing.
    pub fn fingerprint(&self) -> String {
        let mut figurines: Vec<_> = self.figurines.iter().map(|l| (l.id, l.quantity)).collect();
        let mut packages: Vec<_> = self.packages.iter().map(|l| (l.id, l.quantity)).collect();
        figurines.sort();
        packages.sort();
        let render =
            |lines: &[(Uuid, u32)]| lines.iter().map(|(id, qty)| format!("{id}x{qty}")).collect::<Vec<_>>().join(",");
        format!("F:{};P:{}", render(&figurines), render(&packages))
    }
}

/// Sums the quantities of lines naming the same id, keeping the order of first appearance.
fn merge(list: LineList, raw: &[RawCartLine]) -> Result<Vec<CartLine>, CartError> {
    let mut merged: Vec<CartLine> = Vec::with_capacity(raw.len());
    for (index, line) in raw.iter().enumerate() {
        let id = Uuid::parse_str(line.id.trim()).map_err(|_| CartError::MalformedId { list, index })?;
        if !(QUANTITY_MIN..=QUANTITY_MAX).contains(&line.quantity) {
            return Err(CartError::Quantity { list, index });
        }
        let quantity = line.quantity.unsigned_abs();
        match merged.iter_mut().find(|existing| existing.id == id) {
            Some(existing) => {
                existing.quantity += quantity;
                if existing.quantity > QUANTITY_MAX.unsigned_abs() {
                    return Err(CartError::MergedQuantity { list, index });
                }
            }
            None => merged.push(CartLine { id, quantity, first_index: index }),
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(id: Uuid, quantity: i32) -> RawCartLine {
        RawCartLine { id: id.to_string(), quantity }
    }

    #[test]
    fn duplicate_lines_merge_in_order_of_first_appearance() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let cart = Cart::parse(&[raw(b, 2), raw(a, 1), raw(b, 3)], &[raw(a, 4), raw(a, 1)]).unwrap();
        assert_eq!(
            cart.figurines,
            vec![CartLine { id: b, quantity: 5, first_index: 0 }, CartLine { id: a, quantity: 1, first_index: 1 }]
        );
        assert_eq!(cart.packages, vec![CartLine { id: a, quantity: 5, first_index: 0 }]);
    }

    #[test]
    fn quantity_bounds_are_checked_per_line_and_after_merging() {
        let a = Uuid::from_u128(1);
        assert!(Cart::parse(&[raw(a, 1000)], &[]).is_ok());
        let err = Cart::parse(&[raw(a, 0)], &[]).unwrap_err();
        assert_eq!(
            (err.clone(), err.field()),
            (CartError::Quantity { list: LineList::Items, index: 0 }, "items[0].quantity".into())
        );
        assert_eq!(Cart::parse(&[], &[raw(a, 1001)]).unwrap_err().field(), "packages[0].quantity");
        assert_eq!(Cart::parse(&[raw(a, -5)], &[]).unwrap_err().field(), "items[0].quantity");
        let err = Cart::parse(&[raw(a, 600), raw(a, 401)], &[]).unwrap_err();
        assert_eq!(err, CartError::MergedQuantity { list: LineList::Items, index: 1 });
    }

    #[test]
    fn malformed_ids_point_at_their_field() {
        let err =
            Cart::parse(&[raw(Uuid::from_u128(1), 1)], &[RawCartLine { id: "nope".into(), quantity: 1 }]).unwrap_err();
        assert_eq!(err.field(), "packages[0].packageId");
    }

    #[test]
    fn line_count_must_be_between_one_and_fifty() {
        assert_eq!(Cart::parse(&[], &[]).unwrap_err(), CartError::Empty);
        let fifty: Vec<_> = (0..50).map(|i| raw(Uuid::from_u128(i), 1)).collect();
        assert!(Cart::parse(&fifty, &[]).is_ok());
        let too_many = Cart::parse(&fifty, &[raw(Uuid::from_u128(99), 1)]).unwrap_err();
        assert_eq!(too_many, CartError::TooManyLines);
        // Duplicates merge before counting: 60 lines naming one id are one line.
        let same: Vec<_> = (0..60).map(|_| raw(Uuid::from_u128(7), 1)).collect();
        assert_eq!(Cart::parse(&same, &[]).unwrap().line_count(), 1);
    }

    #[test]
    fn fingerprint_ignores_order_and_splitting() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let one = Cart::parse(&[raw(a, 2), raw(b, 1)], &[]).unwrap();
        let two = Cart::parse(&[raw(b, 1), raw(a, 1), raw(a, 1)], &[]).unwrap();
        assert_eq!(one.fingerprint(), two.fingerprint());
        let other = Cart::parse(&[raw(a, 3), raw(b, 1)], &[]).unwrap();
        assert_ne!(one.fingerprint(), other.fingerprint());
        let as_package = Cart::parse(&[raw(b, 1)], &[raw(a, 2)]).unwrap();
        assert_ne!(one.fingerprint(), as_package.fingerprint());
    }
}
