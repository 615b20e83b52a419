//! Repository functions for customers and their credit figures.
//!
//! The consumer reads customers locked (by id) and saves their held credit
//! in one statement per batch (see [`crate::app::credit`]); the table's `CHECK`
//! refuses a figure past the limit besides.

use chrono::{DateTime, Utc};
use event_runtime::{find_many_for_update as find_many_locked, save_columns};
use events::{CustomerId, Money};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use service_kit::Role;

use super::entities::customer::{self, StoredStatus};
use crate::domain::{CreditLine, Customer, CustomerName, Email};

/// The customer a row holds.
///
/// # Errors
/// [`DbErr::Type`] when a stored value breaks its type's rule.
fn customer_of(row: customer::Model) -> Result<Customer, DbErr> {
    let id = row.id;
    let corrupt = |what: &str, error: String| {
        DbErr::Type(format!(
            "customer {id}: the stored {what} is invalid: {error}"
        ))
    };
    let money = |minor: i64, what: &str| {
        Money::parse(minor, &row.currency).map_err(|e| corrupt(what, e.to_string()))
    };
    Ok(Customer {
        id,
        email: Email::parse(&row.email).map_err(|e| corrupt("email", e.to_string()))?,
        name: CustomerName::parse(&row.name).map_err(|e| corrupt("name", e.to_string()))?,
        credit: CreditLine {
            limit: money(row.credit_limit_minor, "credit limit")?,
            reserved: money(row.credit_reserved_minor, "reserved credit")?,
        },
        password_hash: row.password_hash,
        role: row.role,
        status: row.status.into(),
        failed_logins: u32::try_from(row.failed_logins).unwrap_or(0),
        locked_until: row.locked_until,
        bootstrap_admin: row.bootstrap_admin,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The row that holds `customer`.
fn row_of(customer: &Customer) -> customer::Model {
    customer::Model {
        id: customer.id,
        email: customer.email.as_str().to_owned(),
        name: customer.name.as_str().to_owned(),
        password_hash: customer.password_hash.clone(),
        role: customer.role,
        status: customer.status.into(),
        credit_limit_minor: customer.credit.limit.amount_minor(),
        currency: customer.credit.limit.currency().as_str().to_owned(),
        credit_reserved_minor: customer.credit.reserved.amount_minor(),
        created_at: customer.created_at,
        updated_at: customer.updated_at,
        failed_logins: i32::try_from(customer.failed_logins).unwrap_or(i32::MAX),
        locked_until: customer.locked_until,
        bootstrap_admin: customer.bootstrap_admin,
    }
}

fn customers_of(rows: Vec<customer::Model>) -> Result<Vec<Customer>, DbErr> {
    rows.into_iter().map(customer_of).collect()
}

/// Inserts a customer.
///
/// # Errors
/// The database error (a duplicate email is a unique violation).
pub async fn insert(conn: &impl ConnectionTrait, customer: &Customer) -> Result<(), DbErr> {
    customer::Entity::insert(customer::ActiveModel::from(row_of(customer)))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// One customer.
///
/// # Errors
/// The database error.
pub async fn find(conn: &impl ConnectionTrait, id: CustomerId) -> Result<Option<Customer>, DbErr> {
    customer::Entity::find_by_id(id)
        .one(conn)
        .await?
        .map(customer_of)
        .transpose()
}

/// The customer with this (normalized) email.
///
/// # Errors
/// The database error.
pub async fn find_by_email(
    conn: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<Customer>, DbErr> {
    customer::Entity::find()
        .filter(customer::Column::Email.eq(email))
        .one(conn)
        .await?
        .map(customer_of)
        .transpose()
}

/// Up to `limit` customers after `after`, by id.
///
/// # Errors
/// The database error.
pub async fn list(
    conn: &impl ConnectionTrait,
    after: Option<CustomerId>,
    limit: u64,
) -> Result<Vec<Customer>, DbErr> {
    let mut query = customer::Entity::find();
    if let Some(after) = after {
        query = query.filter(customer::Column::Id.gt(after));
    }
    query
        .order_by_asc(customer::Column::Id)
        .limit(limit)
        .all(conn)
        .await
        .and_then(customers_of)
}

/// Saves a customer's name and status as `customer` holds them; `false`
/// when there is no such customer.
///
/// # Errors
/// The database error.
pub async fn save_profile(conn: &impl ConnectionTrait, customer: &Customer) -> Result<bool, DbErr> {
    let result = customer::Entity::update_many()
        .col_expr(customer::Column::Name, Expr::value(customer.name.as_str()))
        .col_expr(
            customer::Column::Status,
            Expr::value(StoredStatus::from(customer.status)),
        )
        .col_expr(
            customer::Column::UpdatedAt,
            Expr::value(customer.updated_at),
        )
        .filter(customer::Column::Id.eq(customer.id))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// The customer with this id, locked until the transaction ends.
///
/// # Errors
/// The database error.
pub async fn find_for_update(
    conn: &impl ConnectionTrait,
    id: CustomerId,
) -> Result<Option<Customer>, DbErr> {
    Ok(find_many_for_update(conn, &[id]).await?.pop())
}

/// Records a wrong password: the count of failures in a row and until
/// when sign-ins are refused.
///
/// # Errors
/// The database error.
pub async fn record_failed_login(
    conn: &impl ConnectionTrait,
    id: CustomerId,
    failures: u32,
    locked_until: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    let failures = i32::try_from(failures).unwrap_or(i32::MAX);
    customer::Entity::update_many()
        .col_expr(customer::Column::FailedLogins, Expr::value(failures))
        .col_expr(customer::Column::LockedUntil, Expr::value(locked_until))
        .filter(customer::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Forgets the wrong passwords of a customer.
///
/// # Errors
/// The database error.
pub async fn clear_failed_logins(conn: &impl ConnectionTrait, id: CustomerId) -> Result<(), DbErr> {
    record_failed_login(conn, id, 0, None).await
}

/// Sets a customer's password hash and clears their lock-out.
///
/// # Errors
/// The database error.
pub async fn set_password(
    conn: &impl ConnectionTrait,
    id: CustomerId,
    password_hash: String,
) -> Result<bool, DbErr> {
    let result = customer::Entity::update_many()
        .col_expr(customer::Column::PasswordHash, Expr::value(password_hash))
        .col_expr(customer::Column::FailedLogins, Expr::value(0))
        .col_expr(
            customer::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(customer::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(customer::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Makes a customer the bootstrap's admin: admin role, marked, and (with
/// `reactivate`) active again.
///
/// # Errors
/// The database error.
pub async fn mark_bootstrap_admin(
    conn: &impl ConnectionTrait,
    id: CustomerId,
    reactivate: bool,
) -> Result<(), DbErr> {
    let mut update = customer::Entity::update_many()
        .col_expr(customer::Column::Role, Expr::value(Role::Admin))
        .col_expr(customer::Column::BootstrapAdmin, Expr::value(true))
        .col_expr(customer::Column::UpdatedAt, Expr::value(Utc::now()));
    if reactivate {
        update = update.col_expr(customer::Column::Status, Expr::value(StoredStatus::Active));
    }
    update
        .filter(customer::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Suspends and unmarks every bootstrap admin but `keep`; returns them as
/// they were.
///
/// # Errors
/// The database error.
pub async fn retire_bootstrap_admins_except(
    conn: &impl ConnectionTrait,
    keep: CustomerId,
) -> Result<Vec<Customer>, DbErr> {
    let retired = customer::Entity::find()
        .filter(customer::Column::BootstrapAdmin.eq(true))
        .filter(customer::Column::Id.ne(keep))
        .all(conn)
        .await?;
    if !retired.is_empty() {
        customer::Entity::update_many()
            .col_expr(
                customer::Column::Status,
                Expr::value(StoredStatus::Suspended),
            )
            .col_expr(customer::Column::BootstrapAdmin, Expr::value(false))
            .col_expr(customer::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(customer::Column::Id.is_in(retired.iter().map(|c| c.id)))
            .exec(conn)
            .await?;
    }
    customers_of(retired)
}

/// Sets the credit limit unless it is below what is reserved now. Returns
/// whether it did.
///
/// # Errors
/// The database error.
pub async fn set_credit_limit(
    conn: &impl ConnectionTrait,
    id: CustomerId,
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

/// The customers among `ids` that exist, by id, locked until the
/// transaction ends.
///
/// # Errors
/// The database error.
pub async fn find_many_for_update(
    conn: &impl ConnectionTrait,
    ids: &[CustomerId],
) -> Result<Vec<Customer>, DbErr> {
    find_many_locked::<customer::Entity, _>(conn, customer::Column::Id, ids)
        .await
        .and_then(customers_of)
}

/// Saves the held credit of existing (locked) customers, one statement for
/// all.
///
/// # Errors
/// The database error (more than the limit breaks a `CHECK` constraint).
pub async fn save_credit<'a>(
    conn: &impl ConnectionTrait,
    customers: impl IntoIterator<Item = &'a Customer>,
) -> Result<(), DbErr> {
    use customer::Column as C;
    let rows = customers.into_iter().map(row_of).collect();
    let columns = [C::CreditReservedMinor, C::UpdatedAt];
    save_columns::<customer::ActiveModel>(conn, rows, C::Id, columns).await
}

/// One customer's figures for the credit invariant.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct CreditBooks {
    /// The customer.
    pub customer_id: CustomerId,
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
