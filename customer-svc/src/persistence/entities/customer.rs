//! `customers`: profiles, credentials, and each customer's credit figures.

use events::CustomerId;
use sea_orm::entity::prelude::*;
use service_kit::Role;

use crate::domain::CustomerStatus;

/// A customer (or the admin account). The database keeps
/// `0 <= credit_reserved_minor <= credit_limit_minor`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customers")]
pub struct Model {
    /// Customer id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: CustomerId,
    /// Lower-cased, unique.
    #[sea_orm(unique)]
    pub email: String,
    /// Display name.
    pub name: String,
    /// argon2id PHC string; the password itself is never stored.
    pub password_hash: String,
    /// What the account may do.
    pub role: Role,
    /// Whether it may order and sign in.
    pub status: CustomerStatus,
    /// Credit limit in minor units.
    pub credit_limit_minor: i64,
    /// Currency of the credit line.
    pub currency: String,
    /// Sum of the RESERVED credit reservations.
    pub credit_reserved_minor: i64,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
    /// Wrong passwords since the last right one.
    pub failed_logins: i32,
    /// Until when sign-ins are refused after too many wrong passwords.
    pub locked_until: Option<DateTimeUtc>,
    /// Whether the start-up bootstrap made (or adopted) this admin for
    /// `OMS_ADMIN_EMAIL`.
    pub bootstrap_admin: bool,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
