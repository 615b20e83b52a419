//! Repository functions for customers and their credit figures.
//!
//! Credit changes are single conditional `UPDATE`s evaluated under the row
//! lock, so concurrent reservations from any number of consumers can never
//! take a customer past their limit (and the table's `CHECK` refuses it
//! besides).

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::entities::customer;

/// Inserts a customer.
///
/// # Errors
/// The database error (a duplicate email is a unique violation).
pub async fn insert(conn: &impl ConnectionTrait, model: customer::Model) -> Result<(), DbErr> {
    customer::Entity::insert(customer::ActiveModel::from(model))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// One customer.
///
/// # Errors
/// The database error.
pub async fn find(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<customer::Model>, DbErr> {
    customer::Entity::find_by_id(id).one(conn).await
}

/// The customer with this (normalized) email.
///
/// # Errors
/// The database error.
pub async fn find_by_email(
    conn: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<customer::Model>, DbErr> {
    customer::Entity::find()
        .filter(customer::Column::Email.eq(email))
        .one(conn)
        .await
}

/// Up to `limit` customers after `after`, by id.
///
/// # Errors
/// The database error.
pub async fn list(
    conn: &impl ConnectionTrait,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<customer::Model>, DbErr> {
    let mut query = customer::Entity::find();
    if let Some(after) = after {
        query = query.filter(customer::Column::Id.gt(after));
    }
    query
        .order_by_asc(customer::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// Applies the set fields of `changes`; returns the row as it is now.
///
/// # Errors
/// The database error; `RecordNotUpdated` when the customer does not exist.
pub async fn update(
    conn: &impl ConnectionTrait,
    changes: customer::ActiveModel,
) -> Result<customer::Model, DbErr> {
    changes.update(conn).await
}

/// Sets the credit limit unless it is below what is reserved now. Returns
/// whether it did.
///
/// # Errors
/// The database error.
pub async fn set_credit_limit(
    conn: &impl ConnectionTrait,
    id: Uuid,
    limit: i64,
) -> Result<bool, DbErr> {
    let result = customer::Entity::update_many()
        .col_expr(customer::Column::CreditLimitMinor, Expr::value(limit))
        .col_expr(customer::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(customer::Column::Id.eq(id))
        .filter(customer::Column::CreditReservedMinor.lte(limit))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Holds `amount` against an active customer's credit if it fits and is in
/// the credit line's currency. Returns whether it did.
///
/// # Errors
/// The database error.
pub async fn reserve_credit(
    conn: &impl ConnectionTrait,
    id: Uuid,
    amount: i64,
    currency: &str,
) -> Result<bool, DbErr> {
    let result = customer::Entity::update_many()
        .col_expr(
            customer::Column::CreditReservedMinor,
            Expr::col(customer::Column::CreditReservedMinor).add(amount),
        )
        .col_expr(customer::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(customer::Column::Id.eq(id))
        .filter(customer::Column::Status.eq("ACTIVE"))
        .filter(customer::Column::Currency.eq(currency))
        .filter(
            Expr::col(customer::Column::CreditReservedMinor)
                .add(amount)
                .lte(Expr::col(customer::Column::CreditLimitMinor)),
        )
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Gives back `amount` of held credit (release or settlement).
///
/// # Errors
/// The database error, or `RecordNotUpdated` if less is held: the books
/// would be wrong, and the transaction must not commit.
pub async fn unhold_credit(
    conn: &impl ConnectionTrait,
    id: Uuid,
    amount: i64,
) -> Result<(), DbErr> {
    let result = customer::Entity::update_many()
        .col_expr(
            customer::Column::CreditReservedMinor,
            Expr::col(customer::Column::CreditReservedMinor).sub(amount),
        )
        .col_expr(customer::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(customer::Column::Id.eq(id))
        .filter(customer::Column::CreditReservedMinor.gte(amount))
        .exec(conn)
        .await?;
    if result.rows_affected == 1 {
        Ok(())
    } else {
        Err(DbErr::RecordNotUpdated)
    }
}

/// One customer's figures for the credit invariant.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct CreditBooks {
    /// The customer.
    pub customer_id: Uuid,
    /// The limit.
    pub credit_limit_minor: i64,
    /// Held, per the customer row.
    pub credit_reserved_minor: i64,
    /// Held, per the RESERVED reservations.
    pub reserved_by_orders: i64,
}

impl CreditBooks {
    /// Whether the books balance and the limit holds.
    pub fn balanced(&self) -> bool {
        self.credit_reserved_minor == self.reserved_by_orders
            && self.credit_reserved_minor <= self.credit_limit_minor
            && self.credit_reserved_minor >= 0
    }
}

/// The credit figures of every customer.
///
/// # Errors
/// The database error.
pub async fn credit_books(conn: &impl ConnectionTrait) -> Result<Vec<CreditBooks>, DbErr> {
    let sql = "SELECT c.id AS customer_id, c.credit_limit_minor, c.credit_reserved_minor,
            CAST(COALESCE((SELECT SUM(r.amount_minor) FROM credit_reservations r
                WHERE r.customer_id = c.id AND r.state = 'RESERVED'), 0) AS BIGINT) AS reserved_by_orders
         FROM customers c ORDER BY c.id";
    CreditBooks::find_by_statement(Statement::from_string(conn.get_database_backend(), sql))
        .all(conn)
        .await
}
