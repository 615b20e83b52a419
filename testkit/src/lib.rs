//! # testkit: real infrastructure for tests
//!
//! Tests in this workspace run against the real things: Apache Kafka and
//! PostgreSQL. This crate finds or starts them so that a plain `cargo test`
//! works on a fresh machine of this project's kind (JDK 17, Maven):
//!
//! - [`kafka_bootstrap`]: `OMS_KAFKA_BOOTSTRAP` when set; otherwise a
//!   single-node KRaft broker started once per test binary from the published
//!   jars (fetched once into the cache with Maven, see [`kafka`]) and stopped
//!   when the binary exits.
//! - [`TestDatabase`]: a fresh database per test, dropped afterwards: on
//!   PostgreSQL, or a SQLite file in a temporary folder ([`Backend`]); the
//!   service tests run on both. The server is `OMS_DATABASE_URL` (an admin URL) when set,
//!   otherwise `postgres://postgres:postgres@127.0.0.1:5432/postgres`, which
//!   `scripts/postgres.sh` installs and starts when it is not running.
//! - [`topic_prefix`]: a unique topic prefix, so tests sharing a broker never
//!   see each other's records.
//! - [`assertions`]: [`eventually`], [`TopicReader`], [`assert_problem`].
//! - [`TestClient`]: the HTTP client every harness calls its service with;
//!   a call names the status it expects.

#![forbid(unsafe_code)]

pub mod assertions;
pub mod client;
pub mod kafka;
pub mod keys;
pub mod postgres;

pub use assertions::{
    TopicReader, assert_openapi_committed, assert_openapi_refs_resolve, assert_phase_names,
    assert_problem, assert_stored_as_serialized, assert_topics_created, count, eventually, header,
};
pub use client::TestClient;
pub use kafka::{kafka_bootstrap, produce, publish};
pub use postgres::{Backend, TestDatabase, TestDatabasePrefix};

/// A topic prefix no other test uses, e.g. `t3f2a….`.
pub fn topic_prefix() -> String {
    format!("t{}.", uuid::Uuid::new_v4().simple())
}

/// The repository's root folder (scripts and the Kafka pom live there).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository root exists")
}

/// Installs a `tracing` subscriber that prints to the test's captured
/// output, filtered by `RUST_LOG` (default `warn`). Safe to call many times.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}
