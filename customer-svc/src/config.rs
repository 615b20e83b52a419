//! customer-svc's settings: its own address and database, the admin account, tokens, throttles and credit
//! (`OMS_CUSTOMER_HTTP_ADDR`, `OMS_CUSTOMER_DATABASE_URL`, …), plus the shared ones
//! (see [`service_kit::settings`]). Every variable with its default and
//! help is in `docs/configuration.md`, generated from these definitions
//! by `oms config-reference`.

use std::net::SocketAddr;

use service_kit::holds::HoldSettings;
use service_kit::{Clock, CommonSettings, service_settings};

/// The service's name: the `producer` of its events and its consumer groups' stem.
pub const SERVICE_NAME: &str = "customer-svc";

service_settings! {
    /// Everything customer-svc can be configured with.
    #[command(name = "customer-svc", version, about = "OMS customer service: customers, credit and authentication")]
    pub struct Settings for SERVICE_NAME, "OMS_CUSTOMER" on "127.0.0.1:8082" {
        /// Email of the admin account made at first start. A new email makes
        /// a new admin and suspends the one made for the previous email.
        #[arg(long, env = "OMS_ADMIN_EMAIL", default_value = "admin@oms.local")]
        pub admin_email: String,
        /// The admin's password when the account is made (never applied to an
        /// existing account: `oms admin reset-password` resets it)
        /// (default: none, required; `admin-change-me` in dev mode).
        ///
        /// Outside dev mode `admin-change-me` and an empty one are refused.
        #[arg(long, env = "OMS_ADMIN_PASSWORD", hide_env_values = true)]
        pub admin_password: Option<String>,
        /// Encrypts the token signing keys in the database: 32 random bytes,
        /// base64 (`openssl rand -base64 32`), the same for every instance
        /// (default: none, required; in dev mode a key file in `OMS_DATA_DIR`).
        #[arg(long, env = "OMS_KEY_ENCRYPTION_KEY", hide_env_values = true)]
        pub key_encryption_key: Option<String>,
        /// Lifetime of access tokens, in seconds.
        #[arg(long, env = "OMS_TOKEN_TTL_SECS", default_value_t = 900)]
        pub token_ttl_secs: u64,
        /// Lifetime of refresh tokens, in seconds; each use rotates the token
        /// and starts its lifetime again.
        #[arg(long, env = "OMS_REFRESH_TOKEN_TTL_SECS", default_value_t = 30 * 24 * 3600)]
        pub refresh_token_ttl_secs: u64,
        /// Limits on guessing and on the password hashing it costs.
        #[command(flatten)]
        pub throttle: ThrottleSettings,
        /// Credit limit of customers who register themselves, in minor units.
        #[arg(long, env = "OMS_DEFAULT_CREDIT_LIMIT_MINOR", default_value_t = 100_000)]
        pub default_credit_limit_minor: i64,
        /// Currency of credit lines (ISO 4217).
        #[arg(long, env = "OMS_CREDIT_CURRENCY", default_value = "EUR")]
        pub credit_currency: String,
        /// Development mode: the default admin password is allowed, and a
        /// ready-to-use admin token is printed at start-up.
        ///
        /// A generated key-encryption key is allowed too. Never in
        /// production.
        #[arg(long, env = "OMS_DEV_MODE", default_value_t = false)]
        pub dev_mode: bool,
        /// When a credit reservation nobody decides expires.
        #[command(flatten)]
        pub holds: HoldSettings,
    }
    secret_files: admin_password = "OMS_ADMIN_PASSWORD", key_encryption_key = "OMS_KEY_ENCRYPTION_KEY";
}

/// The admin password of dev mode when `OMS_ADMIN_PASSWORD` is not set;
/// refused outside dev mode.
pub const DEFAULT_ADMIN_PASSWORD: &str = "admin-change-me";

/// Rate limits on logins and registrations, the lock-out after wrong
/// passwords, and the bound on concurrent password hashing.
#[derive(Debug, Clone, clap::Args)]
pub struct ThrottleSettings {
    /// Login attempts per minute from one client address.
    ///
    /// A bucket that starts full; beyond it, 429 `TOO_MANY_ATTEMPTS` with
    /// `Retry-After`.
    #[arg(long, env = "OMS_LOGIN_ATTEMPTS_PER_MINUTE", default_value_t = 60)]
    pub login_attempts_per_minute: u32,
    /// Self-registrations per hour from one client address (an admin
    /// registering customers is not limited).
    #[arg(long, env = "OMS_REGISTRATIONS_PER_HOUR", default_value_t = 20)]
    pub registrations_per_hour: u32,
    /// Wrong passwords in a row after which an account is locked.
    #[arg(long, env = "OMS_LOCKOUT_AFTER_FAILURES", default_value_t = 5)]
    pub lockout_after_failures: u32,
    /// The first lock-out, in seconds; it doubles with each further
    /// failure, up to an hour.
    #[arg(long, env = "OMS_LOCKOUT_SECS", default_value_t = 30)]
    pub lockout_secs: u64,
    /// Unknown emails whose wrong passwords are counted and locked like an
    /// account's (in memory; the least recently tried are forgotten first).
    #[arg(long, env = "OMS_LOCKOUT_TRACKED_EMAILS", default_value_t = 10_000)]
    pub lockout_tracked_emails: u32,
    /// Password changes per hour for one account (each also takes from
    /// its client address's sign-in bucket).
    ///
    /// Beyond it, 429 `TOO_MANY_ATTEMPTS`.
    #[arg(long, env = "OMS_PASSWORD_CHANGES_PER_HOUR", default_value_t = 5)]
    pub password_changes_per_hour: u32,
    /// Password hashes computed at once (default: the number of cores).
    ///
    /// Each is argon2id, 19 MiB.
    #[arg(long, env = "OMS_PASSWORD_HASH_CONCURRENCY")]
    pub password_hash_concurrency: Option<usize>,
    /// Milliseconds a request waits for a hashing slot before it is
    /// answered 503 `PASSWORD_HASHING_BUSY` with `Retry-After`.
    #[arg(long, env = "OMS_PASSWORD_HASH_QUEUE_MS", default_value_t = 2000)]
    pub password_hash_queue_ms: u64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            login_attempts_per_minute: 60,
            registrations_per_hour: 20,
            lockout_after_failures: 5,
            lockout_secs: 30,
            lockout_tracked_emails: 10_000,
            password_changes_per_hour: 5,
            password_hash_concurrency: None,
            password_hash_queue_ms: 2000,
        }
    }
}

impl Settings {
    /// The documented defaults, on a free loopback port, with the given
    /// admin account and key-encryption key, whatever the environment
    /// says: what tests start from (`oms up` reads the environment).
    pub fn local(
        common: CommonSettings,
        admin_email: &str,
        admin_password: &str,
        key_encryption_key: &str,
    ) -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: None,
            admin_email: admin_email.to_owned(),
            admin_password: Some(admin_password.to_owned()),
            key_encryption_key: Some(key_encryption_key.to_owned()),
            token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            throttle: ThrottleSettings::default(),
            default_credit_limit_minor: 100_000,
            credit_currency: "EUR".into(),
            dev_mode: false,
            holds: HoldSettings::default(),
            common,
            clock: Clock::system(),
        }
    }
}
