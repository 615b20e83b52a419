//! Every received record is checked against the JSON Schema of its event
//! type and version (the files in `schemas/`, generated from the same types)
//! before it is decoded, so that a record which breaks the published contract
//! becomes a dead letter with the exact violation, whatever the Rust types
//! would have tolerated.

use std::collections::HashMap;
use std::sync::LazyLock;

use events::envelope::{DecodeError, EVENT_TYPES, Envelope, RawEnvelope};
use events::schema::event_schema;

static VALIDATORS: LazyLock<HashMap<(&'static str, u32), jsonschema::Validator>> =
    LazyLock::new(|| {
        EVENT_TYPES
            .iter()
            .map(|info| {
                let schema = event_schema(info.event_type, info.schema_version)
                    .expect("every listed event type has a schema");
                let validator = jsonschema::validator_for(&schema)
                    .unwrap_or_else(|e| panic!("schema of {} is invalid: {e}", info.event_type));
                ((info.event_type, info.schema_version), validator)
            })
            .collect()
    });

/// Decodes a record's value: JSON, envelope, known type and version, valid
/// against its schema, then typed.
///
/// # Errors
/// The first rule the value breaks, as a [`DecodeError`]; a schema violation
/// lists up to three violations with their JSON paths.
pub fn decode(value: Option<&[u8]>) -> Result<Envelope, DecodeError> {
    let bytes = value.ok_or(DecodeError::EmptyValue)?;
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
    let (event_type, schema_version) = match (
        json.get("event_type").and_then(|v| v.as_str()),
        json.get("schema_version").and_then(|v| v.as_u64()),
    ) {
        (Some(t), Some(v)) => (t.to_owned(), u32::try_from(v).unwrap_or(u32::MAX)),
        _ => {
            return Err(DecodeError::InvalidEnvelope(
                "event_type (string) and schema_version (integer) are required".into(),
            ));
        }
    };
    let Some(validator) = VALIDATORS.get(&(event_type.as_str(), schema_version)) else {
        return Err(DecodeError::UnknownEventType {
            event_type,
            schema_version,
        });
    };
    let violations: Vec<String> = validator
        .iter_errors(&json)
        .take(3)
        .map(|e| {
            let path = e.instance_path.to_string();
            let path = if path.is_empty() {
                "/".to_owned()
            } else {
                path
            };
            format!("at {path}: {e}")
        })
        .collect();
    if !violations.is_empty() {
        return Err(DecodeError::SchemaViolation {
            event_type,
            schema_version,
            detail: violations.join("; "),
        });
    }
    let raw: RawEnvelope =
        serde_json::from_value(json).map_err(|e| DecodeError::InvalidEnvelope(e.to_string()))?;
    raw.into_typed()
}
