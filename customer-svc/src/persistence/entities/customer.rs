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
    pub status: StoredStatus,
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

/// [`CustomerStatus`] as a column: its wire spelling. The domain knows
/// nothing of databases, so the column type lives here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, serde::Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StoredStatus {
    /// [`CustomerStatus::Active`].
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    /// [`CustomerStatus::Suspended`].
    #[sea_orm(string_value = "SUSPENDED")]
    Suspended,
}

impl From<CustomerStatus> for StoredStatus {
    fn from(status: CustomerStatus) -> Self {
        match status {
            CustomerStatus::Active => Self::Active,
            CustomerStatus::Suspended => Self::Suspended,
        }
    }
}

impl From<StoredStatus> for CustomerStatus {
    fn from(status: StoredStatus) -> Self {
        match status {
            StoredStatus::Active => Self::Active,
            StoredStatus::Suspended => Self::Suspended,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::Iterable;

    /// A stored status is spelt as it is shown, and reads back as itself.
    #[test]
    fn every_status_is_stored_as_it_is_shown() {
        testkit::assert_stored_as_serialized::<StoredStatus>();
        for stored in StoredStatus::iter() {
            let status = CustomerStatus::from(stored);
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::to_value(stored).unwrap()
            );
            assert_eq!(StoredStatus::from(status), stored);
        }
    }
}
