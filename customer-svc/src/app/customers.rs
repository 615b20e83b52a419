//! Customer commands and queries behind the HTTP API, and the admin account
//! bootstrap.
//!
//! ## The admin bootstrap
//! - At start-up the account of `OMS_ADMIN_EMAIL` is created once, with
//!   `OMS_ADMIN_PASSWORD`, and marked as the bootstrap's. A later start
//!   never changes its password, role or status: a password changed over
//!   the API stays changed. [`reset_admin_password`] (`oms admin
//!   reset-password`) is the way back in.
//! - A new `OMS_ADMIN_EMAIL` makes a new admin and suspends the one made
//!   for the previous email (with a warning naming it), so an old admin
//!   does not stay active unnoticed.
//! - The email of an existing customer account is refused: promoting it
//!   would give the admin role to whoever chose its password.

use chrono::{SubsecRound, Utc};
use event_runtime::begin_write;
use events::{Currency, CustomerId, Money};
use sea_orm::DatabaseConnection;
use service_kit::{ClientAddress, Role};

use crate::app::passwords::Passwords;
use crate::app::sessions::Sessions;
use crate::domain::{CreditLine, Customer, CustomerName, CustomerStatus, Email, Password};
use crate::error::CustomerError;
use crate::persistence::customers::{self, CreditBooks};
use crate::persistence::refresh_tokens;

/// A customer to register.
#[derive(Debug)]
pub struct NewCustomer {
    /// Their email.
    pub email: Email,
    /// Their name.
    pub name: CustomerName,
    /// Their password.
    pub password: Password,
    /// Credit limit in minor units of the credit line's currency.
    pub credit_limit_minor: i64,
    /// The credit line's currency.
    pub currency: Currency,
    /// `customer` or `admin`.
    pub role: Role,
}

/// Registers a customer.
///
/// # Errors
/// [`CustomerError::EmailTaken`], [`CustomerError::Busy`], or a database or
/// hashing error.
pub async fn register(
    db: &DatabaseConnection,
    passwords: &Passwords,
    new: NewCustomer,
) -> Result<Customer, CustomerError> {
    register_as(db, passwords, new, false).await
}

async fn register_as(
    db: &DatabaseConnection,
    passwords: &Passwords,
    new: NewCustomer,
    bootstrap_admin: bool,
) -> Result<Customer, CustomerError> {
    let now = Utc::now().trunc_subsecs(6);
    let limit = Money::new(new.credit_limit_minor, new.currency.clone())
        .map_err(|e| CustomerError::invalid("credit_limit.amount_minor", e.to_string()))?;
    let customer = Customer {
        id: CustomerId::generate(),
        email: new.email,
        name: new.name,
        password_hash: passwords.hash(&new.password).await?,
        role: new.role,
        status: CustomerStatus::Active,
        credit: CreditLine {
            reserved: Money::zero(new.currency),
            limit,
        },
        failed_logins: 0,
        locked_until: None,
        bootstrap_admin,
        created_at: now,
        updated_at: now,
    };
    let txn = begin_write(db).await?;
    match customers::insert(&txn, &customer).await {
        Ok(()) => {
            txn.commit().await?;
            Ok(customer)
        }
        Err(error) if event_runtime::database::is_unique_violation(&error) => {
            Err(CustomerError::EmailTaken)
        }
        Err(error) => Err(error.into()),
    }
}

/// One customer.
///
/// # Errors
/// [`CustomerError::CustomerNotFound`], or a database error.
pub async fn get(db: &DatabaseConnection, id: CustomerId) -> Result<Customer, CustomerError> {
    customers::find(db, id)
        .await?
        .ok_or(CustomerError::CustomerNotFound(id))
}

/// A page of customers and the cursor of the next one.
///
/// # Errors
/// A database error.
pub async fn list(
    db: &DatabaseConnection,
    after: Option<CustomerId>,
    limit: u64,
) -> Result<(Vec<Customer>, Option<CustomerId>), CustomerError> {
    let (page, next) = service_kit::pagination::split_page(
        customers::list(db, after, limit + 1).await?,
        limit,
        |c| c.id,
    );
    Ok((page, next))
}

/// A change to a customer; absent fields stay.
#[derive(Debug, Default)]
pub struct CustomerPatch {
    /// New name.
    pub name: Option<CustomerName>,
    /// New status (admin).
    pub status: Option<CustomerStatus>,
    /// New credit limit in minor units (admin).
    pub credit_limit_minor: Option<i64>,
}

/// Changes a customer.
///
/// # Errors
/// [`CustomerError::CustomerNotFound`], [`CustomerError::LimitBelowReserved`],
/// or a database error.
pub async fn update(
    db: &DatabaseConnection,
    id: CustomerId,
    patch: CustomerPatch,
) -> Result<Customer, CustomerError> {
    let txn = begin_write(db).await?;
    if let Some(limit) = patch.credit_limit_minor
        && !customers::set_credit_limit(&txn, id, limit).await?
    {
        let current = customers::find(&txn, id)
            .await?
            .ok_or(CustomerError::CustomerNotFound(id))?;
        return Err(CustomerError::LimitBelowReserved {
            limit,
            reserved: current.credit.reserved.amount_minor(),
        });
    }
    let mut customer = customers::find_for_update(&txn, id)
        .await?
        .ok_or(CustomerError::CustomerNotFound(id))?;
    if let Some(name) = patch.name {
        customer.name = name;
    }
    if let Some(status) = patch.status {
        customer.status = status;
        if status == CustomerStatus::Suspended {
            refresh_tokens::revoke_customer(&txn, id, Utc::now()).await?;
        }
    }
    customer.updated_at = Utc::now().trunc_subsecs(6);
    if !customers::save_profile(&txn, &customer).await? {
        return Err(CustomerError::CustomerNotFound(id));
    }
    txn.commit().await?;
    Ok(customer)
}

/// Sets a new password and ends every sign-in of the customer. A
/// customer changing their own password gives the current one (checked
/// under the lock-out rule); an admin may reset another's without it.
/// Throttled before anything is read or hashed: per client address (the
/// sign-in bucket) and per account ([`crate::app::throttle`]).
///
/// # Errors
/// [`CustomerError::CustomerNotFound`], [`CustomerError::WrongCurrentPassword`],
/// [`CustomerError::TooManyAttempts`], [`CustomerError::Busy`], or a
/// database error.
pub async fn change_password(
    db: &DatabaseConnection,
    sessions: &Sessions,
    client: ClientAddress,
    id: CustomerId,
    current: Option<&str>,
    new: &Password,
) -> Result<(), CustomerError> {
    sessions.throttle().password_change(client, id)?;
    let customer = get(db, id).await?;
    if let Some(current) = current {
        sessions.check_password(&customer, current).await?;
    }
    let hash = sessions.passwords().hash(new).await?;
    let txn = begin_write(db).await?;
    if !customers::set_password(&txn, id, hash).await? {
        return Err(CustomerError::CustomerNotFound(id));
    }
    refresh_tokens::revoke_customer(&txn, id, Utc::now()).await?;
    txn.commit().await?;
    Ok(())
}

/// Makes sure the admin account of `email` exists (created with
/// `password` if not; see the module's bootstrap rules) and suspends the
/// bootstrap's admins of earlier emails. Returns its id.
///
/// # Errors
/// [`CustomerError::EmailTaken`] when `email` is a customer's account, or
/// a database or hashing error.
pub async fn bootstrap_admin(
    db: &DatabaseConnection,
    passwords: &Passwords,
    email: &Email,
    password: &Password,
    currency: &Currency,
) -> Result<CustomerId, CustomerError> {
    let id = match customers::find_by_email(db, email.as_str()).await? {
        Some(existing) if existing.bootstrap_admin => existing.id,
        // An admin made over the API, or by a version before the mark:
        // adopted as it is.
        Some(existing) if existing.role == Role::Admin => {
            customers::mark_bootstrap_admin(db, existing.id, false).await?;
            existing.id
        }
        Some(_) => return Err(CustomerError::EmailTaken),
        None => create_admin(db, passwords, email, password, currency).await?,
    };
    retire_previous_admins(db, id).await?;
    Ok(id)
}

/// Sets the password of the admin account of `email` (creating it if
/// missing), makes it active, the bootstrap's admin and an admin again, and
/// ends its sign-ins: the recovery behind `oms admin reset-password`.
///
/// # Errors
/// A database or hashing error.
pub async fn reset_admin_password(
    db: &DatabaseConnection,
    passwords: &Passwords,
    email: &Email,
    password: &Password,
    currency: &Currency,
) -> Result<CustomerId, CustomerError> {
    let id = match customers::find_by_email(db, email.as_str()).await? {
        Some(existing) => {
            let hash = passwords.hash(password).await?;
            let txn = begin_write(db).await?;
            customers::set_password(&txn, existing.id, hash).await?;
            customers::mark_bootstrap_admin(&txn, existing.id, true).await?;
            refresh_tokens::revoke_customer(&txn, existing.id, Utc::now()).await?;
            txn.commit().await?;
            existing.id
        }
        None => create_admin(db, passwords, email, password, currency).await?,
    };
    retire_previous_admins(db, id).await?;
    Ok(id)
}

async fn create_admin(
    db: &DatabaseConnection,
    passwords: &Passwords,
    email: &Email,
    password: &Password,
    currency: &Currency,
) -> Result<CustomerId, CustomerError> {
    let admin = NewCustomer {
        email: email.clone(),
        name: CustomerName::parse("Administrator")?,
        password: password.clone(),
        credit_limit_minor: 0,
        currency: currency.clone(),
        role: Role::Admin,
    };
    match register_as(db, passwords, admin, true).await {
        Ok(admin) => {
            tracing::info!(email = email.as_str(), "created the admin account");
            Ok(admin.id)
        }
        // Another instance bootstrapped it at the same moment.
        Err(CustomerError::EmailTaken) => customers::find_by_email(db, email.as_str())
            .await?
            .filter(|c| c.bootstrap_admin)
            .map(|c| c.id)
            .ok_or(CustomerError::EmailTaken),
        Err(error) => Err(error),
    }
}

async fn retire_previous_admins(
    db: &DatabaseConnection,
    keep: CustomerId,
) -> Result<(), CustomerError> {
    let txn = begin_write(db).await?;
    let retired = customers::retire_bootstrap_admins_except(&txn, keep).await?;
    for previous in &retired {
        refresh_tokens::revoke_customer(&txn, previous.id, Utc::now()).await?;
    }
    txn.commit().await?;
    for previous in retired {
        tracing::warn!(
            email = previous.email.as_str(),
            id = %previous.id,
            "OMS_ADMIN_EMAIL changed: the admin account of the previous email is suspended"
        );
    }
    Ok(())
}

/// The credit figures of every customer.
///
/// # Errors
/// A database error.
pub async fn credit_books(db: &DatabaseConnection) -> Result<Vec<CreditBooks>, CustomerError> {
    Ok(customers::credit_books(db).await?)
}
