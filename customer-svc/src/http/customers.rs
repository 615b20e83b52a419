use axum::extract::State;
use axum::http::{StatusCode, header};
use chrono::{DateTime, Utc};
use events::{CustomerId, Money};
use serde::{Deserialize, Serialize};
use service_kit::{AnyCase, Caller, ClientAddress, Json, Path, Problem, Query, Role};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::app::customers::{self, CustomerPatch, NewCustomer};
use crate::domain::customer::parse_credit_limit;
use crate::domain::{Customer, CustomerName, CustomerStatus, Email, Password};
use crate::error::CustomerError;

const TAG: &str = "customers";

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_customer, list_customers))
        .routes(routes!(get_customer, update_customer))
        .routes(routes!(get_credit))
        .routes(routes!(change_password))
}

/// A customer to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomerRequest {
    /// Unique email address (case does not matter).
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// Display name, 1-200 characters.
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    /// 8-128 characters; stored only as an argon2 hash.
    #[schema(example = "correct horse battery")]
    pub password: String,
    /// Credit limit (admin only; default from `OMS_DEFAULT_CREDIT_LIMIT_MINOR`).
    pub credit_limit: Option<Money>,
}

/// A change to a customer. `name`: the customer or an admin; `status` and
/// `credit_limit`: admin only.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomerRequest {
    /// New name.
    pub name: Option<String>,
    /// `ACTIVE` or `SUSPENDED`, in any case.
    #[schema(value_type = Option<CustomerStatus>)]
    pub status: Option<AnyCase<CustomerStatus>>,
    /// New credit limit, in the credit line's currency; not below what open orders hold.
    pub credit_limit: Option<Money>,
}

/// A new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The password now: required when changing one's own; an admin
    /// resetting someone else's leaves it out.
    pub current_password: Option<String>,
    /// 8-128 characters.
    #[schema(example = "a new correct horse")]
    pub new_password: String,
}

/// A customer. The password is never returned.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CustomerResponse {
    /// Customer id.
    pub id: CustomerId,
    /// Email address (lower-cased).
    pub email: String,
    /// Display name.
    pub name: String,
    /// `customer` or `admin`.
    pub role: Role,
    /// `ACTIVE` or `SUSPENDED`.
    pub status: CustomerStatus,
    /// Credit limit.
    pub credit_limit: Money,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<Customer> for CustomerResponse {
    fn from(customer: Customer) -> Self {
        Self {
            id: customer.id,
            email: customer.email.as_str().to_owned(),
            name: customer.name.as_str().to_owned(),
            role: customer.role,
            status: customer.status,
            credit_limit: customer.credit.limit,
            created_at: customer.created_at,
            updated_at: customer.updated_at,
        }
    }
}

/// A page of customers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CustomerPage {
    /// The customers, by id.
    pub items: Vec<CustomerResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<CustomerId>,
}

/// Paging of the customer list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListCustomersQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<CustomerId>,
    /// Page size, 1-100 (default 50).
    pub limit: Option<u64>,
}

/// A customer's credit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreditResponse {
    /// The customer.
    pub customer_id: CustomerId,
    /// The limit.
    pub limit: Money,
    /// Held for open orders.
    pub reserved: Money,
    /// What new orders may still use: limit - reserved.
    pub available: Money,
}

type Created<T> = (StatusCode, [(header::HeaderName, String); 1], Json<T>);

/// Registers a customer. Anyone may (self-registration is rate-limited
/// per client address); only an admin may set the credit limit.
#[utoipa::path(post, path = "/customers", tag = TAG, request_body = CreateCustomerRequest,
    responses(
        (status = 201, description = "Created; Location names the customer", body = CustomerResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "credit_limit without an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Email taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many registrations from this address (`TOO_MANY_ATTEMPTS`); `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Every password-hashing slot is busy (`PASSWORD_HASHING_BUSY`); `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_customer(
    State(state): State<AppState>,
    caller: Option<Caller>,
    client: ClientAddress,
    Json(request): Json<CreateCustomerRequest>,
) -> Result<Created<CustomerResponse>, Problem> {
    let by_admin = caller.as_ref().is_some_and(Caller::is_admin);
    let credit_limit_minor = match &request.credit_limit {
        None => state.default_credit_limit_minor,
        Some(limit) => {
            if !by_admin {
                return Err(
                    CustomerError::Forbidden("only an admin may set a credit limit").into(),
                );
            }
            if *limit.currency() != state.currency {
                return Err(CustomerError::invalid(
                    "credit_limit.currency",
                    format!("credit lines are in {}", state.currency),
                )
                .into());
            }
            parse_credit_limit(limit.amount_minor())?
        }
    };
    let new = NewCustomer {
        email: Email::parse(&request.email)?,
        name: CustomerName::parse(&request.name)?,
        password: Password::parse(&request.password)?,
        credit_limit_minor,
        currency: state.currency.clone(),
        role: Role::Customer,
    };
    if !by_admin {
        state.sessions.throttle().registration(client)?;
    }
    let customer = customers::register(&state.db, state.sessions.passwords(), new).await?;
    let location = format!("/customers/{}", customer.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(customer.into()),
    ))
}

/// Lists customers by id (admin).
#[utoipa::path(get, path = "/customers", tag = TAG, params(ListCustomersQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = CustomerPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_customers(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListCustomersQuery>,
) -> Result<Json<CustomerPage>, Problem> {
    caller.require_admin()?;
    let limit = service_kit::pagination::page_size(query.limit)?;
    let (page, next_cursor) = customers::list(&state.db, query.cursor, limit).await?;
    let items = page.into_iter().map(CustomerResponse::from).collect();
    Ok(Json(CustomerPage { items, next_cursor }))
}

/// One customer (the customer themself or an admin).
#[utoipa::path(get, path = "/customers/{id}", tag = TAG,
    params(("id" = Uuid, Path, description = "Customer id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = CustomerResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<CustomerId>,
) -> Result<Json<CustomerResponse>, Problem> {
    caller.require_self_or_admin(id)?;
    Ok(Json(customers::get(&state.db, id).await?.into()))
}

/// Changes a customer: the name (the customer or an admin), status and
/// credit limit (admin).
#[utoipa::path(patch, path = "/customers/{id}", tag = TAG, request_body = UpdateCustomerRequest,
    params(("id" = Uuid, Path, description = "Customer id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = CustomerResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Limit below what is reserved", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<CustomerId>,
    Json(request): Json<UpdateCustomerRequest>,
) -> Result<Json<CustomerResponse>, Problem> {
    caller.require_self_or_admin(id)?;
    if (request.status.is_some() || request.credit_limit.is_some()) && !caller.is_admin() {
        return Err(
            CustomerError::Forbidden("only an admin may change status or credit limit").into(),
        );
    }
    let credit_limit_minor = match request.credit_limit {
        Some(limit) => {
            let current = customers::get(&state.db, id).await?;
            if limit.currency() != current.credit.limit.currency() {
                return Err(CustomerError::invalid(
                    "credit_limit.currency",
                    format!("the credit line is in {}", current.credit.limit.currency()),
                )
                .into());
            }
            Some(parse_credit_limit(limit.amount_minor())?)
        }
        None => None,
    };
    let patch = CustomerPatch {
        name: request
            .name
            .as_deref()
            .map(CustomerName::parse)
            .transpose()?,
        status: request.status.map(|s| s.0),
        credit_limit_minor,
    };
    if patch.name.is_none() && patch.status.is_none() && patch.credit_limit_minor.is_none() {
        return Err(
            CustomerError::invalid("body", "name, status or credit_limit must be given").into(),
        );
    }
    Ok(Json(customers::update(&state.db, id, patch).await?.into()))
}

/// A customer's credit: limit, reserved for open orders, available.
#[utoipa::path(get, path = "/customers/{id}/credit", tag = TAG,
    params(("id" = Uuid, Path, description = "Customer id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = CreditResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_credit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<CustomerId>,
) -> Result<Json<CreditResponse>, Problem> {
    caller.require_self_or_admin(id)?;
    let customer = customers::get(&state.db, id).await?;
    Ok(Json(CreditResponse {
        customer_id: id,
        available: customer.credit.available(),
        limit: customer.credit.limit,
        reserved: customer.credit.reserved,
    }))
}

/// Changes a password: the customer's own (with the current one, checked
/// like a sign-in: wrong ones count toward the lock-out), or anyone's by an
/// admin (without it). Every refresh token of the customer is revoked.
#[utoipa::path(post, path = "/customers/{id}/password", tag = TAG, request_body = ChangePasswordRequest,
    params(("id" = Uuid, Path, description = "Customer id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed; the customer's sign-ins are ended"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Someone else's password (`FORBIDDEN`), or a wrong current password (`WRONG_PASSWORD`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The new password breaks a rule, or the current one is missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many password changes from this address or for this account, or the account is locked after wrong passwords (`TOO_MANY_ATTEMPTS`); `Retry-After` says how long", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Every password-hashing slot is busy (`PASSWORD_HASHING_BUSY`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn change_password(
    State(state): State<AppState>,
    client: ClientAddress,
    caller: Caller,
    Path(id): Path<CustomerId>,
    Json(request): Json<ChangePasswordRequest>,
) -> Result<StatusCode, Problem> {
    caller.require_self_or_admin(id)?;
    let new = Password::parse(&request.new_password).map_err(|e| match e {
        CustomerError::Invalid(invalid) => CustomerError::invalid("new_password", invalid.message),
        other => other,
    })?;
    let own = caller.id == id;
    let current = match request.current_password.as_deref() {
        Some(current) => Some(current),
        None if own => {
            return Err(CustomerError::invalid(
                "current_password",
                "changing one's own password takes the current one",
            )
            .into());
        }
        None => None,
    };
    customers::change_password(&state.db, &state.sessions, client, id, current, &new).await?;
    Ok(StatusCode::NO_CONTENT)
}
