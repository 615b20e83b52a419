//! `signing_keys`: the Ed25519 keys that sign access tokens.

use sea_orm::entity::prelude::*;

/// A signing key. The newest unretired key signs; every key whose tokens
/// may still be alive is published.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    /// Key id (the JWT `kid`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// The private key, sealed with `OMS_KEY_ENCRYPTION_KEY` (see
    /// [`crate::app::tokens`]); a PKCS#8 PEM only before its first start with
    /// sealing, which seals it.
    #[sea_orm(column_type = "Text")]
    pub private_key: String,
    /// When it was made.
    pub created_at: DateTimeUtc,
    /// When a newer key replaced it for signing; `None` while current.
    pub superseded_at: Option<DateTimeUtc>,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
