//! The event contract: committed schemas match the types, every event type
//! round-trips through JSON and validates against its schema, and invalid
//! payloads are refused with a precise error.

use std::collections::BTreeSet;
use std::path::PathBuf;

use events::{DecodeError, EVENT_TYPES, Envelope, event_schema, examples};

fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

fn file_name(event_type: &str, version: u32) -> String {
    format!("{event_type}.v{version}.schema.json")
}

/// Regenerate with `OMS_UPDATE_SCHEMAS=1 cargo test -p events --test it contract`.
#[test]
fn committed_schemas_match_the_rust_types() {
    let update = std::env::var("OMS_UPDATE_SCHEMAS").is_ok_and(|v| v == "1");
    let mut drifted = Vec::new();
    for info in EVENT_TYPES {
        let schema = event_schema(info.event_type, info.schema_version).expect("schema exists");
        let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        let path = schemas_dir().join(file_name(info.event_type, info.schema_version));
        if update {
            std::fs::write(&path, &generated).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(generated.as_str()) {
            drifted.push(path.display().to_string());
        }
    }
    assert!(
        drifted.is_empty(),
        "these schema files differ from what the Rust types generate: {drifted:?}\n\
         A compatible change: regenerate with OMS_UPDATE_SCHEMAS=1 cargo test -p events --test it contract.\n\
         A breaking change: add a new version of the event instead."
    );
}

#[test]
fn every_schema_file_belongs_to_an_event_type() {
    let known: BTreeSet<String> = EVENT_TYPES
        .iter()
        .map(|i| file_name(i.event_type, i.schema_version))
        .collect();
    let files: BTreeSet<String> = std::fs::read_dir(schemas_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".schema.json"))
        .collect();
    assert_eq!(files, known, "schemas/ and the event types disagree");
    assert_eq!(
        known.len(),
        18,
        "the contract defines 16 event types, two of them in two versions"
    );
}

#[test]
fn every_event_type_round_trips_and_validates_against_its_schema() {
    let all = examples::all();
    assert_eq!(all.len(), EVENT_TYPES.len(), "one example per event type");
    for info in EVENT_TYPES {
        let envelope = examples::envelope_of_version(info.event_type, info.schema_version)
            .expect("an example");
        let json = envelope.to_json();
        assert_eq!(json["event_type"], info.event_type);
        assert_eq!(json["schema_version"], info.schema_version);

        let schema = event_schema(info.event_type, info.schema_version).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{} breaks its own schema: {errors:?}",
            info.event_type
        );

        let decoded = Envelope::from_bytes(&envelope.to_bytes()).unwrap();
        assert_eq!(decoded, envelope, "{} does not round-trip", info.event_type);
        assert_eq!(decoded.key(), envelope.event.aggregate_id());
    }
}

#[test]
fn wire_format_uses_snake_case_upper_case_enums_and_rfc3339_utc() {
    let envelope = examples::envelope_of("OrderRejected").unwrap();
    let json = envelope.to_json();
    assert_eq!(json["occurred_at"], "2026-11-22T10:00:00Z");
    assert_eq!(json["payload"]["rejected_by"], "INVENTORY");
    let placed = examples::envelope_of("OrderPlaced").unwrap().to_json();
    assert_eq!(
        placed["payload"]["total"],
        serde_json::json!({"amount_minor": 3998, "currency": "EUR"})
    );
}

fn placed_with(mutate: impl FnOnce(&mut serde_json::Value)) -> Result<Envelope, DecodeError> {
    let mut json = examples::envelope_of("OrderPlaced").unwrap().to_json();
    mutate(&mut json);
    Envelope::from_json(json)
}

#[test]
fn invalid_payloads_are_refused_with_the_reason() {
    let zero = placed_with(|j| j["payload"]["lines"][0]["quantity"] = 0.into()).unwrap_err();
    assert_eq!(zero.code(), "SCHEMA_VIOLATION");
    assert!(
        zero.to_string().contains("quantity must be at least 1"),
        "{zero}"
    );

    let negative =
        placed_with(|j| j["payload"]["total"]["amount_minor"] = (-1).into()).unwrap_err();
    assert!(
        negative.to_string().contains("must not be negative"),
        "{negative}"
    );

    let currency = placed_with(|j| j["payload"]["total"]["currency"] = "eur".into()).unwrap_err();
    assert!(currency.to_string().contains("ISO 4217"), "{currency}");

    let float = placed_with(|j| j["payload"]["total"]["amount_minor"] = 19.99.into()).unwrap_err();
    assert_eq!(float.code(), "SCHEMA_VIOLATION");

    let unknown = placed_with(|j| j["event_type"] = "OrderTeleported".into()).unwrap_err();
    assert_eq!(unknown.code(), "UNKNOWN_EVENT_TYPE");

    let future = placed_with(|j| j["schema_version"] = 3.into()).unwrap_err();
    assert_eq!(future.code(), "UNKNOWN_EVENT_TYPE");

    let missing = placed_with(|j| {
        j.as_object_mut().unwrap().remove("event_id");
    })
    .unwrap_err();
    assert_eq!(missing.code(), "INVALID_ENVELOPE");

    assert_eq!(
        Envelope::from_bytes(b"{not json").unwrap_err().code(),
        "INVALID_JSON"
    );
}

/// Regenerate with `OMS_UPDATE_SCHEMAS=1 cargo test -p events --test it contract`.
#[test]
fn the_committed_asyncapi_document_matches_the_event_definitions() {
    let path = schemas_dir().join("asyncapi.json");
    let generated = serde_json::to_string_pretty(&events::asyncapi::document()).unwrap() + "\n";
    if std::env::var("OMS_UPDATE_SCHEMAS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
    }
    assert!(
        std::fs::read_to_string(&path).ok().as_deref() == Some(generated.as_str()),
        "schemas/asyncapi.json differs from what the event definitions generate; \
         regenerate with OMS_UPDATE_SCHEMAS=1 cargo test -p events --test it contract"
    );
}

/// The document is valid AsyncAPI 3.0.0 (the specification's own JSON
/// Schema, vendored), and says what a subscriber needs: every topic with
/// its key, every event on its topic with headers and a payload schema
/// file that exists, the publisher and every consumer group.
#[test]
fn the_asyncapi_document_is_valid_and_complete() {
    let document = events::asyncapi::document();
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../vendor/asyncapi-specs/asyncapi-3.0.0.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft7::new(&spec).expect("the AsyncAPI schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "not valid AsyncAPI 3.0.0: {errors:#?}");
    // A broken document is refused, so the check can fail.
    let mut broken = document.clone();
    broken["channels"]["orders"]["address"] = serde_json::json!(42);
    assert!(!validator.is_valid(&broken));

    for topic in events::Topic::ALL {
        let channel = &document["channels"][topic.base_name()];
        assert!(
            channel["description"]
                .as_str()
                .unwrap()
                .contains(topic.key())
        );
        assert!(document["channels"][format!("{}DeadLetters", topic.base_name())].is_object());
        let publisher = format!("{}.publish.{}", topic.publisher(), topic.base_name());
        assert_eq!(document["operations"][&publisher]["action"], "send");
    }
    for info in EVENT_TYPES {
        let id = events::asyncapi::message_id(info);
        assert!(
            document["channels"][info.topic.base_name()]["messages"][&id].is_object(),
            "{id} is not on {}",
            info.topic
        );
        let message = &document["components"]["messages"][&id];
        assert_eq!(
            message["headers"]["properties"]["event_type"]["const"],
            info.event_type
        );
        assert!(message["headers"]["properties"]["traceparent"].is_object());
        let file = message["payload"]["schema"]["$ref"]
            .as_str()
            .unwrap()
            .trim_start_matches("./");
        assert!(schemas_dir().join(file).exists(), "{file} is missing");
    }
    for subscription in events::topics::SUBSCRIPTIONS {
        for topic in subscription.topics {
            let operation = format!("{}.receive.{}", subscription.group(), topic.base_name());
            assert_eq!(document["operations"][&operation]["action"], "receive");
        }
    }
}
