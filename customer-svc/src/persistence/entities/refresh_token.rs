//! `refresh_tokens`: the refresh tokens handed out, by the hash of their
//! secret.

use events::CustomerId;
use sea_orm::entity::prelude::*;

/// A refresh token. Each use replaces it with a new one of the same
/// family; the family ends when one is revoked or a replaced one is shown
/// again.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    /// SHA-256 of the token, hex; the token itself is never stored.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    /// The sign-in it descends from.
    pub family_id: Uuid,
    /// Whose it is.
    pub customer_id: CustomerId,
    /// When it was issued.
    pub created_at: DateTimeUtc,
    /// When it stops working.
    pub expires_at: DateTimeUtc,
    /// When it was exchanged for its successor.
    pub rotated_at: Option<DateTimeUtc>,
    /// When its family was revoked (logout, reuse, suspension, new password).
    pub revoked_at: Option<DateTimeUtc>,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
