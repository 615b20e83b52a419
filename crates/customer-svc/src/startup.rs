//! Assembles customer-svc: database, keys, admin account, topics, relay,
//! consumer, HTTP.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use events::{Currency, Topic};
use service_kit::auth::jwt::JwtAuthenticator;
use service_kit::{App, Role, ServiceBuilder};

use crate::config::{DEFAULT_ADMIN_PASSWORD, Settings};
use crate::consumer::OrderEvents;
use crate::customers::bootstrap_admin;
use crate::domain::{Email, Password};
use crate::http::AppState;
use crate::persistence::migrations::Migrator;
use crate::tokens::{KeyStore, LocalKeys};

/// The topics customer-svc publishes to or consumes from.
pub const TOPICS: &[Topic] = &[Topic::Orders, Topic::Customers];

/// Builds and starts customer-svc; [`App::run_until_stopped`] keeps it running.
///
/// # Errors
/// Invalid settings, an unreachable database or broker, or a taken address.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    let currency = Currency::parse(&settings.credit_currency).context("OMS_CREDIT_CURRENCY")?;
    let admin_email =
        Email::parse(&settings.admin_email).map_err(|e| anyhow::anyhow!("OMS_ADMIN_EMAIL: {e}"))?;
    let admin_password = Password::parse(&settings.admin_password)
        .map_err(|e| anyhow::anyhow!("OMS_ADMIN_PASSWORD: {e}"))?;
    anyhow::ensure!(
        settings.default_credit_limit_minor >= 0,
        "OMS_DEFAULT_CREDIT_LIMIT_MINOR must not be negative"
    );

    let mut builder = ServiceBuilder::start::<Migrator>(settings.service(), TOPICS).await?;
    let keys = Arc::new(KeyStore::new(
        builder.db().clone(),
        Duration::from_secs(settings.token_ttl_secs),
    ));
    keys.ensure_key().await?;
    let admin_id = bootstrap_admin(builder.db(), &admin_email, &admin_password, &currency).await?;
    if settings.admin_password == DEFAULT_ADMIN_PASSWORD {
        tracing::warn!(
            email = admin_email.as_str(),
            "the admin account uses the default password; set OMS_ADMIN_PASSWORD"
        );
    }
    if settings.dev_mode {
        let token = keys.issue(admin_id, Role::Admin).await?;
        tracing::info!("development mode: an admin token follows on standard output");
        println!("OMS_ADMIN_TOKEN={}", token.token);
    }

    builder.authenticator(Arc::new(JwtAuthenticator::with_source(LocalKeys(
        keys.clone(),
    ))));
    builder.consume("saga", &[Topic::Orders], OrderEvents)?;
    let state = AppState {
        db: builder.db().clone(),
        keys,
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
