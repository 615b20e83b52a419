//! The published JSON Schema of each event type and version: the
//! envelope's schema from the types ([`crate::envelope`]) with the type's
//! example ([`crate::examples`]) in it. The files in `schemas/` are these.

use crate::envelope::envelope_schema_of;
use crate::examples::envelope_of_version;

/// The JSON Schema (draft 2020-12) of the whole envelope for one event type
/// and version, with an example, or `None` if the contract has no such type.
pub fn event_schema(event_type: &str, schema_version: u32) -> Option<serde_json::Value> {
    let mut schema = envelope_schema_of(event_type, schema_version)?;
    if let (Some(object), Some(example)) = (
        schema.as_object_mut(),
        envelope_of_version(event_type, schema_version),
    ) {
        object.insert("examples".into(), serde_json::json!([example.to_json()]));
    }
    Some(schema)
}
