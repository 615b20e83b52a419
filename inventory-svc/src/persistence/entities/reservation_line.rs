//! `reservation_lines`: the units of each product an order holds (or held).

use events::{OrderId, ProductId};
use sea_orm::entity::prelude::*;

/// One line of a reservation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reservation_lines")]
pub struct Model {
    /// The order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: OrderId,
    /// The product.
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: ProductId,
    /// Units.
    pub quantity: i64,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
