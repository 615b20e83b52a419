//! Typed ids: an [`OrderId`] can never be passed where a [`ProductId`] is
//! wanted. Each is a UUID on the wire (the same JSON Schema as a bare
//! UUID: `{"type": "string", "format": "uuid"}`) and, with the `sea-orm`
//! feature, a typed database column, so an id read from a table or an
//! event needs no conversion that could fail.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
        #[cfg_attr(feature = "sea-orm", derive(sea_orm::DeriveValueType))]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh id: a UUIDv7, so ids sort by creation time.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// The id a UUID names.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID.
            pub const fn as_uuid(self) -> Uuid {
                self.0
            }

            /// The nil id, for records that name none.
            pub const fn nil() -> Self {
                Self(Uuid::nil())
            }
        }

        /// Inline, exactly a UUID's schema: typed ids change nothing in the
        /// published contract.
        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                Uuid::json_schema(generator)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }

        #[cfg(feature = "sea-orm")]
        impl sea_orm::TryFromU64 for $name {
            fn try_from_u64(_: u64) -> Result<Self, sea_orm::DbErr> {
                Err(sea_orm::DbErr::ConvertFromU64(stringify!($name)))
            }
        }
    };
}

typed_id!(
    /// An order.
    OrderId
);
typed_id!(
    /// A product of the catalog.
    ProductId
);
typed_id!(
    /// A customer (or the admin account).
    CustomerId
);
typed_id!(
    /// One event: unique per envelope, the inbox's key.
    EventId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_a_bare_uuid_on_the_wire_and_in_its_schema() {
        let uuid = Uuid::now_v7();
        let id = OrderId::from_uuid(uuid);
        assert_eq!(
            serde_json::to_value(id).unwrap(),
            serde_json::to_value(uuid).unwrap()
        );
        assert_eq!(
            serde_json::from_value::<OrderId>(serde_json::json!(uuid.to_string())).unwrap(),
            id
        );
        assert!(serde_json::from_value::<OrderId>(serde_json::json!("not-a-uuid")).is_err());
        assert_eq!(
            serde_json::to_value(schemars::schema_for!(OrderId)).unwrap()["format"],
            "uuid"
        );
        assert_eq!(id.to_string().parse::<OrderId>().unwrap(), id);
    }
}
