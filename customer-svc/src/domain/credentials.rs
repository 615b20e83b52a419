//! What a sign-in leaves behind: refresh tokens (stored as digests) and
//! the keys that sign access tokens (stored sealed).

use chrono::{DateTime, Utc};
use events::CustomerId;
use uuid::Uuid;

/// A refresh token, as stored: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// The sign-in it belongs to; rotation keeps it.
    pub family_id: Uuid,
    /// Whose it is.
    pub customer_id: CustomerId,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was exchanged for its successor.
    pub rotated_at: Option<DateTime<Utc>>,
    /// When it was revoked (sign-out, password change, suspension, reuse).
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key that signs access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// Its key id, in each token's header.
    pub kid: String,
    /// The private key, sealed with `OMS_KEY_ENCRYPTION_KEY`.
    pub sealed_private_key: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When a newer key took over signing.
    pub superseded_at: Option<DateTime<Utc>>,
}
