//! `oms admin reset-password`: the way back into a system whose admin
//! password is lost. customer-svc does the reset
//! ([`customer_svc::reset_admin`]): this module finds the database and the
//! new password (variables, files or standard input) and hands them over.

use std::io::BufRead;

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

impl ResetPasswordArgs {
    /// The variables read from a file named by `<VARIABLE>_FILE` too.
    pub const SECRET_VARIABLES: [&'static str; 1] = ["OMS_CUSTOMER_DATABASE_URL"];
}

/// Resets the password to `OMS_NEW_ADMIN_PASSWORD` (or the file
/// `OMS_NEW_ADMIN_PASSWORD_FILE` names), or to the first line of standard
/// input; returns the account's id.
///
/// # Errors
/// An invalid email or password, a database URL or secret file missing or
/// unreadable, an unreachable database.
pub async fn reset_password(args: &ResetPasswordArgs) -> anyhow::Result<events::CustomerId> {
    let mut database_url = args.database_url.clone();
    let [database_url_variable] = ResetPasswordArgs::SECRET_VARIABLES;
    read_file(&mut database_url, database_url_variable)?;
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
    customer_svc::reset_admin(&database_url, &args.email, &password, &args.currency).await
}
