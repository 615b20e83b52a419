//! Customer commands and queries behind the HTTP API, and the admin account
//! bootstrap.

use chrono::{SubsecRound, Utc};
use events::plumbing::begin_write;
use events::{Currency, Money};
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr};
use service_kit::Role;
use uuid::Uuid;

use crate::domain::{CustomerName, CustomerStatus, Email, Password};
use crate::error::CustomerError;
use crate::persistence::customers::{self, CreditBooks};
use crate::persistence::entities::customer;
use crate::tokens::{IssuedToken, KeyStore, hash_password, verify_password};

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
/// [`CustomerError::EmailTaken`], or a database or hashing error.
pub async fn register(
    db: &DatabaseConnection,
    new: NewCustomer,
) -> Result<customer::Model, CustomerError> {
    let now = Utc::now().trunc_subsecs(6);
    let model = customer::Model {
        id: Uuid::now_v7(),
        email: new.email.as_str().to_owned(),
        name: new.name.as_str().to_owned(),
        password_hash: hash_password(&new.password).await?,
        role: role_name(new.role).to_owned(),
        status: CustomerStatus::Active.as_str().to_owned(),
        credit_limit_minor: new.credit_limit_minor,
        currency: new.currency.as_str().to_owned(),
        credit_reserved_minor: 0,
        created_at: now,
        updated_at: now,
    };
    let txn = begin_write(db).await?;
    match customers::insert(&txn, model.clone()).await {
        Ok(()) => {
            txn.commit().await?;
            Ok(model)
        }
        Err(error) if CustomerError::is_unique_violation(&error) => Err(CustomerError::EmailTaken),
        Err(error) => Err(error.into()),
    }
}

/// One customer.
///
/// # Errors
/// [`CustomerError::CustomerNotFound`], or a database error.
pub async fn get(db: &DatabaseConnection, id: Uuid) -> Result<customer::Model, CustomerError> {
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
    after: Option<Uuid>,
    limit: u64,
) -> Result<(Vec<customer::Model>, Option<Uuid>), CustomerError> {
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
    id: Uuid,
    patch: CustomerPatch,
) -> Result<customer::Model, CustomerError> {
    let txn = begin_write(db).await?;
    if let Some(limit) = patch.credit_limit_minor
        && !customers::set_credit_limit(&txn, id, limit).await?
    {
        let current = customers::find(&txn, id)
            .await?
            .ok_or(CustomerError::CustomerNotFound(id))?;
        return Err(CustomerError::LimitBelowReserved {
            limit,
            reserved: current.credit_reserved_minor,
        });
    }
    let mut changes = customer::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(id),
        ..Default::default()
    };
    if let Some(name) = patch.name {
        changes.name = Set(name.as_str().to_owned());
    }
    if let Some(status) = patch.status {
        changes.status = Set(status.as_str().to_owned());
    }
    changes.updated_at = Set(Utc::now().trunc_subsecs(6));
    let updated = match customers::update(&txn, changes).await {
        Ok(model) => model,
        Err(DbErr::RecordNotUpdated) => return Err(CustomerError::CustomerNotFound(id)),
        Err(error) => return Err(error.into()),
    };
    txn.commit().await?;
    Ok(updated)
}

/// Checks credentials and issues a token. Wrong email and wrong password
/// are the same error.
///
/// # Errors
/// [`CustomerError::InvalidCredentials`], [`CustomerError::AccountSuspended`],
/// or a database or signing error.
pub async fn issue_token(
    db: &DatabaseConnection,
    keys: &KeyStore,
    email: &str,
    password: &str,
) -> Result<(customer::Model, IssuedToken), CustomerError> {
    let customer = match Email::parse(email) {
        Ok(email) => customers::find_by_email(db, email.as_str()).await?,
        Err(_) => None,
    };
    if !verify_password(
        password,
        customer.as_ref().map(|c| c.password_hash.as_str()),
    )
    .await
    {
        return Err(CustomerError::InvalidCredentials);
    }
    let customer = customer.ok_or(CustomerError::InvalidCredentials)?;
    if customer.status != CustomerStatus::Active.as_str() {
        return Err(CustomerError::AccountSuspended);
    }
    let token = keys.issue(customer.id, role_of(&customer)).await?;
    Ok((customer, token))
}

/// Makes sure the configured admin account exists, is an admin and has the
/// configured password. Returns its id.
///
/// # Errors
/// Database or hashing errors.
pub async fn bootstrap_admin(
    db: &DatabaseConnection,
    email: &Email,
    password: &Password,
    currency: &Currency,
) -> Result<Uuid, CustomerError> {
    if let Some(existing) = customers::find_by_email(db, email.as_str()).await? {
        let mut changes = customer::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(existing.id),
            ..Default::default()
        };
        changes.role = Set(role_name(Role::Admin).to_owned());
        changes.status = Set(CustomerStatus::Active.as_str().to_owned());
        if !verify_password(password.expose(), Some(&existing.password_hash)).await {
            changes.password_hash = Set(hash_password(password).await?);
        }
        customers::update(db, changes).await?;
        return Ok(existing.id);
    }
    let admin = register(
        db,
        NewCustomer {
            email: email.clone(),
            name: CustomerName::parse("Administrator")?,
            password: password.clone(),
            credit_limit_minor: 0,
            currency: currency.clone(),
            role: Role::Admin,
        },
    )
    .await;
    match admin {
        Ok(admin) => Ok(admin.id),
        // Another instance bootstrapped it at the same moment.
        Err(CustomerError::EmailTaken) => Ok(customers::find_by_email(db, email.as_str())
            .await?
            .ok_or(CustomerError::CustomerNotFound(Uuid::nil()))?
            .id),
        Err(error) => Err(error),
    }
}

/// The credit figures of every customer.
///
/// # Errors
/// A database error.
pub async fn credit_books(db: &DatabaseConnection) -> Result<Vec<CreditBooks>, CustomerError> {
    Ok(customers::credit_books(db).await?)
}

/// A stored customer's role.
pub fn role_of(customer: &customer::Model) -> Role {
    if customer.role == "admin" {
        Role::Admin
    } else {
        Role::Customer
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Customer => "customer",
    }
}

/// `amount_minor` in a stored customer's currency.
///
/// # Errors
/// When the stored figures are corrupt.
pub fn money(amount_minor: i64, currency: &str) -> Result<Money, CustomerError> {
    Money::parse(amount_minor, currency).map_err(|e| CustomerError::Internal(e.into()))
}
