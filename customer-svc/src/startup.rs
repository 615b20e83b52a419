//! Assembles customer-svc: database, keys, admin account, topics, relay,
//! consumer, HTTP.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use events::{Currency, Topic};
use service_kit::auth::jwt::JwtAuthenticator;
use service_kit::{App, Clock, Role, ServiceBuilder};

use tokio_util::sync::CancellationToken;

use crate::app::credit::Credit;
use crate::app::customers::bootstrap_admin;
use crate::app::passwords::Passwords;
use crate::app::sessions::Sessions;
use crate::app::throttle::Throttle;
use crate::app::tokens::{KeySealer, KeyStore, LocalKeys};
use crate::config::{DEFAULT_ADMIN_PASSWORD, Settings};
use crate::domain::{Email, Password};
use crate::error::CustomerError;
use crate::http::AppState;
use crate::persistence::migrations::Migrator;

/// The topics customer-svc publishes to or consumes from.
pub const TOPICS: &[Topic] = &[Topic::Orders, Topic::Customers];

/// Builds and starts customer-svc; [`App::run_until_stopped`] keeps it running.
///
/// # Errors
/// Invalid settings (among them a missing or default admin password or
/// key-encryption key outside dev mode), an unreachable database or broker,
/// or a taken address.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    let currency = Currency::parse(&settings.credit_currency).context("OMS_CREDIT_CURRENCY")?;
    let admin_email =
        Email::parse(&settings.admin_email).map_err(|e| anyhow::anyhow!("OMS_ADMIN_EMAIL: {e}"))?;
    let admin_password = admin_password(&settings)?;
    let sealer = key_sealer(&settings)?;
    let throttle = Throttle::new(&settings.throttle)?;
    let passwords = Passwords::new(
        settings
            .throttle
            .password_hash_concurrency
            .unwrap_or_else(Passwords::default_concurrency),
        Duration::from_millis(settings.throttle.password_hash_queue_ms),
    );
    anyhow::ensure!(
        settings.default_credit_limit_minor >= 0,
        "OMS_DEFAULT_CREDIT_LIMIT_MINOR must not be negative"
    );

    let mut builder = ServiceBuilder::start::<Migrator>(settings.service(), TOPICS).await?;
    let keys = Arc::new(
        KeyStore::new(
            builder.db().clone(),
            Duration::from_secs(settings.token_ttl_secs),
            sealer,
        )
        .with_clock(settings.clock.clone())
        .with_verifier_refresh(settings.common.jwks_refresh()),
    );
    keys.ensure_key().await?;
    let admin_id = bootstrap_admin(
        builder.db(),
        &passwords,
        &admin_email,
        &admin_password,
        &currency,
    )
    .await
    .map_err(|error| match error {
        CustomerError::EmailTaken => anyhow::anyhow!(
            "OMS_ADMIN_EMAIL {} is the email of a customer account, which is never made an \
             admin at start-up; choose another email, or make that account the admin with \
             `oms admin reset-password`",
            admin_email.as_str()
        ),
        other => anyhow::Error::from(other),
    })?;
    if settings.dev_mode {
        let token = keys.issue(admin_id, Role::Admin).await?;
        tracing::info!("development mode: an admin token follows on standard output");
        println!("OMS_ADMIN_TOKEN={}", token.token);
    }

    let sessions = Arc::new(Sessions::new(
        builder.db().clone(),
        keys.clone(),
        passwords,
        throttle,
        Duration::from_secs(settings.refresh_token_ttl_secs),
        settings.clock.clone(),
    ));
    let verifier = Arc::new(
        JwtAuthenticator::with_source(LocalKeys(keys.clone()))
            .refresh_every(settings.common.jwks_refresh()),
    );
    builder.authenticator(verifier.clone());
    let shutdown = builder.shutdown_token();
    builder.spawn(
        "credential-housekeeping",
        housekeeping(sessions.clone(), settings.clock.clone(), shutdown),
    );
    let participant = Credit::new(settings.clock.clone());
    builder.take_part_in_saga(participant, &settings.holds, &settings.clock)?;
    let state = AppState {
        db: builder.db().clone(),
        outbox: builder.outbox().clone(),
        clock: settings.clock.clone(),
        keys,
        sessions,
        verifier,
        default_credit_limit_minor: settings.default_credit_limit_minor,
        currency,
    };
    builder
        .serve(
            crate::http::router(state),
            "customer-svc",
            "Owns customer profiles and credit; validates the customer of every order, reserves credit in the saga, and issues the tokens every service checks.",
        )
        .await
}

/// The admin password of the first start: required outside dev mode, and
/// never the published default there.
fn admin_password(settings: &Settings) -> anyhow::Result<Password> {
    let given = settings.admin_password.as_deref().unwrap_or_default();
    let password = match given {
        "" if settings.dev_mode => DEFAULT_ADMIN_PASSWORD,
        "" => anyhow::bail!(
            "OMS_ADMIN_PASSWORD is not set: outside dev mode (OMS_DEV_MODE=true) the admin \
             account needs a password of its own (8-128 characters)"
        ),
        DEFAULT_ADMIN_PASSWORD if !settings.dev_mode => anyhow::bail!(
            "OMS_ADMIN_PASSWORD is the published default {DEFAULT_ADMIN_PASSWORD:?}, which \
             is refused outside dev mode: choose a password of your own"
        ),
        given => given,
    };
    if password == DEFAULT_ADMIN_PASSWORD {
        tracing::warn!("dev mode: a new admin account gets the default password");
    }
    Password::parse(password).map_err(|e| anyhow::anyhow!("OMS_ADMIN_PASSWORD: {e}"))
}

/// The sealer of `OMS_KEY_ENCRYPTION_KEY`; in dev mode without it, of a
/// key kept in the data directory (made on first start).
fn key_sealer(settings: &Settings) -> anyhow::Result<KeySealer> {
    if let Some(secret) = settings
        .key_encryption_key
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        return KeySealer::from_base64(secret);
    }
    anyhow::ensure!(
        settings.dev_mode,
        "OMS_KEY_ENCRYPTION_KEY is not set: outside dev mode the token signing keys are \
         stored encrypted under it. Make one with `openssl rand -base64 32` and give every \
         customer-svc instance the same"
    );
    let path = settings
        .common
        .data_dir
        .join("customer-svc.key-encryption-key");
    KeySealer::from_base64(&read_or_create_secret(&path)?)
}

/// The secret in `path`, made (readable by its owner only) if missing.
///
/// # Errors
/// When the file can be neither read nor created.
pub fn read_or_create_secret(path: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let secret = KeySealer::generate_secret()?;
            file.write_all(secret.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(secret)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .trim()
                .to_owned())
        }
        Err(error) => Err(error).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// At start and then once a minute by `clock` (so that a test's manual
/// clock can make it run): expired refresh tokens, keys no token names,
/// idle address buckets.
async fn housekeeping(sessions: Arc<Sessions>, clock: Clock, shutdown: CancellationToken) {
    loop {
        if let Err(error) = sessions.prune().await {
            tracing::warn!(
                error = format!("{error:#}"),
                "credential housekeeping failed; next try in a minute"
            );
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = clock.sleep(Duration::from_secs(60)) => {}
        }
    }
}
