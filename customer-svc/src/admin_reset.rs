//! The admin password reset from outside the service: what
//! `oms admin reset-password` calls when the admin's password is lost. The
//! start-up bootstrap never overwrites a password ([`crate::app::customers`]),
//! so this is the one way that does: it sets the password of the admin
//! account of `email` (creating the account if it is missing), makes it an
//! active admin and the bootstrap's admin again, and ends its sign-ins. It
//! opens customer-svc's database directly (migrating it first, as the
//! service does), so it works when no admin can sign in and while the
//! service is stopped.

use std::time::Duration;

use events::{Currency, CustomerId};
use service_kit::database::{DatabaseSettings, SqliteDurability, connect_and_migrate};

use crate::app::customers::reset_admin_password;
use crate::app::passwords::Passwords;
use crate::domain::{Email, Password};
use crate::persistence::migrations::Migrator;

/// Sets the password of the admin account `email` in the database at
/// `database_url`, as described in the [module](self); `credit_currency`
/// is the currency of the (empty) credit line of an account it creates.
/// Returns the account's id.
///
/// # Errors
/// An invalid email, password or currency (one line naming it), or a
/// database that cannot be opened, migrated or written.
pub async fn reset_admin(
    database_url: &str,
    email: &str,
    new_password: &str,
    credit_currency: &str,
) -> anyhow::Result<CustomerId> {
    let email = Email::parse(email)?;
    let password = Password::parse(new_password)?;
    let currency = Currency::parse(credit_currency)?;
    let settings = DatabaseSettings {
        max_connections: 2,
        sqlite_busy_timeout: Duration::from_secs(5),
        sqlite_durability: SqliteDurability::Full,
    };
    let database = connect_and_migrate::<Migrator>(database_url, &settings).await?;
    // One hash, so one slot; nobody else waits for it.
    let passwords = Passwords::new(1, Duration::from_secs(60));
    Ok(reset_admin_password(
        &database.connection,
        &passwords,
        &email,
        &password,
        &currency,
    )
    .await?)
}
