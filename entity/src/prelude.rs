//! The entities under short names, for `use entity::prelude::*`.

pub use super::figurine::Entity as Figurine;
pub use super::order::Entity as Order;
pub use super::order_discount::Entity as OrderDiscount;
pub use super::order_event::Entity as OrderEvent;
pub use super::order_line::Entity as OrderLine;
pub use super::outbox::Entity as Outbox;
pub use super::package::Entity as Package;
pub use super::package_item::Entity as PackageItem;
pub use super::user::Entity as User;
