//! `order_lines`: what each order holds, at the price it was placed at.

use events::{OrderId, ProductId};
use sea_orm::entity::prelude::*;

/// One line.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_lines")]
pub struct Model {
    /// The order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: OrderId,
    /// Position in the order, from 0.
    #[sea_orm(primary_key, auto_increment = false)]
    pub line_no: i32,
    /// The product.
    pub product_id: ProductId,
    /// Units.
    pub quantity: i64,
    /// Unit price at placement, in minor units of the order's currency.
    pub unit_price_minor: i64,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
