//! `oms admin reset-password`: the way back into a system whose admin
//! password is lost. The start-up bootstrap never overwrites a password
//! (see `customer_svc::app::customers`), so this is the one place that does: it
//! sets the password of the admin account of `--email` (creating the
//! account if it is missing), makes it an active admin and the bootstrap's
//! admin again, and ends its sign-ins. It talks to customer-svc's database
//! directly, so it works when no admin can sign in.

use std::io::BufRead;

use customer_svc::app::customers::reset_admin_password;
use customer_svc::app::passwords::Passwords;
use customer_svc::domain::{Email, Password};
use customer_svc::persistence::migrations::Migrator;
use events::Currency;
use service_kit::database::{DatabaseSettings, SqliteDurability, connect_and_migrate};
use service_kit::secrets::read_file;

/// Which database and account.
#[derive(Debug, Clone, clap::Args)]
pub struct ResetPasswordArgs {
    /// customer-svc's database: `postgres://…/oms_customer`, or
    /// `sqlite://data/customer-svc.sqlite` (the file `oms up` keeps; stop
    /// `oms up` first, it holds the file). Or a file holding it,
    /// `OMS_CUSTOMER_DATABASE_URL_FILE`.
    #[arg(long, env = "OMS_CUSTOMER_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The admin account's email.
    #[arg(long, env = "OMS_ADMIN_EMAIL", default_value = "admin@oms.local")]
    pub email: String,
    /// Currency of the account's (empty) credit line, if it is created.
    #[arg(long, env = "OMS_CREDIT_CURRENCY", default_value = "EUR")]
    pub currency: String,
}

/// Resets the password to `OMS_NEW_ADMIN_PASSWORD` (or the file
/// `OMS_NEW_ADMIN_PASSWORD_FILE` names), or to the first line of standard
/// input; returns the account's id.
///
/// # Errors
/// An invalid email or password, a database URL or secret file missing or
/// unreadable, an unreachable database.
pub async fn reset_password(args: &ResetPasswordArgs) -> anyhow::Result<events::CustomerId> {
    let email = Email::parse(&args.email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let currency = Currency::parse(&args.currency)?;
    let mut database_url = args.database_url.clone();
    read_file(&mut database_url, "OMS_CUSTOMER_DATABASE_URL")?;
    let database_url = database_url.ok_or_else(|| {
        anyhow::anyhow!(
            "customer-svc's database is needed: --database-url, OMS_CUSTOMER_DATABASE_URL or \
             OMS_CUSTOMER_DATABASE_URL_FILE"
        )
    })?;
    let mut new_password = std::env::var("OMS_NEW_ADMIN_PASSWORD").ok();
    read_file(&mut new_password, "OMS_NEW_ADMIN_PASSWORD")?;
    let password = match new_password {
        Some(password) => password,
        None => {
            eprintln!("new admin password (one line on standard input):");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let password = Password::parse(&password).map_err(|e| anyhow::anyhow!("password: {e}"))?;
    let settings = DatabaseSettings {
        max_connections: 2,
        sqlite_busy_timeout: std::time::Duration::from_secs(5),
        sqlite_durability: SqliteDurability::Full,
    };
    let database = connect_and_migrate::<Migrator>(&database_url, &settings).await?;
    let passwords = Passwords::new(1, std::time::Duration::from_secs(60));
    Ok(reset_admin_password(
        &database.connection,
        &passwords,
        &email,
        &password,
        &currency,
    )
    .await?)
}
