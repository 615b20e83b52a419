//! Ed25519 private keys (PKCS#8 PEM) for tests that sign tokens. They are
//! published in this repository and so protect nothing: tests only.

/// A signing key.
pub const SIGNING_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJr+PmWesDwS1hKGJ4BRKDNV0PCI/NCDiSBybI3MKKOC
-----END PRIVATE KEY-----
";

/// Another signing key, for rotation and wrong-signature tests.
pub const OTHER_SIGNING_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIMw2Cl4nXHJ4N0/h2O0jRwS9g5oaNy0onqUHPRL2U7Y6
-----END PRIVATE KEY-----
";
