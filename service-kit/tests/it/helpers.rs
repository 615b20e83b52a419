//! `spawn_app()`: a tiny service built with the kit, on its own database and
//! topic prefix, listening on a free port.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use event_runtime::{PlumbingMigration, later_migrations};
use futures::future::BoxFuture;
use sea_orm_migration::prelude::*;
use serde::{Deserialize, Serialize};
use service_kit::auth::AuthError;
use service_kit::{
    App, Authenticator, Caller, CommonSettings, Json, Path, Problem, Role, ServiceBuilder,
    ServiceSettings,
};
use testkit::TestDatabase;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations: Vec<Box<dyn MigrationTrait>> = vec![Box::new(PlumbingMigration)];
        migrations.extend(later_migrations());
        migrations
    }
}

/// A request with a typed field, to provoke type errors.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct Greeting {
    pub name: String,
    pub count: u32,
}

/// Echoes a greeting.
#[utoipa::path(post, path = "/greetings", tag = "test",
    request_body = Greeting,
    responses((status = 200, body = Greeting), (status = 400, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn create_greeting(Json(greeting): Json<Greeting>) -> Json<Greeting> {
    Json(greeting)
}

/// Admin-only: a customer by id.
#[utoipa::path(get, path = "/admin/customers/{id}", tag = "test",
    params(("id" = uuid::Uuid, Path, description = "Customer id")),
    security(("bearer" = [])),
    responses((status = 200, body = String), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn get_customer_as_admin(
    caller: Caller,
    Path(id): Path<uuid::Uuid>,
) -> Result<String, Problem> {
    caller.require_admin()?;
    Ok(id.to_string())
}

/// Accepts the tokens `admin` and `customer`.
struct TestTokens;

impl Authenticator for TestTokens {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Caller, AuthError>> {
        Box::pin(async move {
            match token {
                "admin" => Ok(Caller {
                    id: events::CustomerId::nil(),
                    role: Role::Admin,
                }),
                "customer" => Ok(Caller {
                    id: events::CustomerId::generate(),
                    role: Role::Customer,
                }),
                _ => Err(AuthError::InvalidToken("unknown test token".into())),
            }
        })
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub app: Option<App>,
    _database: Option<TestDatabase>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn stop(mut self) {
        self.app.take().unwrap().stop().await.unwrap();
    }
}

pub enum Store {
    Postgres,
    Sqlite(std::path::PathBuf),
}

pub async fn spawn_app() -> TestApp {
    spawn_app_on(Store::Postgres, true).await
}

/// The test service with `authenticator` checking tokens.
pub async fn spawn_app_with(authenticator: Arc<dyn Authenticator>) -> TestApp {
    spawn_app_on_with(Store::Postgres, Some(authenticator)).await
}

pub async fn spawn_app_on(store: Store, with_test_tokens: bool) -> TestApp {
    let authenticator: Option<Arc<dyn Authenticator>> = if with_test_tokens {
        Some(Arc::new(TestTokens))
    } else {
        None
    };
    spawn_app_on_with(store, authenticator).await
}

async fn spawn_app_on_with(store: Store, authenticator: Option<Arc<dyn Authenticator>>) -> TestApp {
    testkit::init_tracing();
    let bootstrap = testkit::kafka_bootstrap().await;
    let (database, url) = match store {
        Store::Postgres => {
            let database = TestDatabase::create().await;
            let url = database.url.clone();
            (Some(database), Some(url))
        }
        Store::Sqlite(dir) => (
            None,
            Some(format!("sqlite://{}/kit.sqlite?mode=rwc", dir.display())),
        ),
    };
    let mut common = CommonSettings::local(bootstrap);
    common.topic_prefix = testkit::topic_prefix();
    common.topic_partitions = 1;
    common.http_body_limit_bytes = 1024;
    common.http_header_timeout_secs = 2;
    let settings = ServiceSettings {
        name: "kit-test",
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: url,
        common,
    };
    let mut builder = ServiceBuilder::start::<Migrator>(settings, &[events::Topic::Orders])
        .await
        .unwrap();
    match authenticator {
        Some(authenticator) => {
            builder.authenticator(authenticator);
        }
        // The extractor's fallback: a service that trusts no issuer.
        None => {
            builder.authenticator(Arc::new(service_kit::auth::RefuseAll));
        }
    }
    let api = OpenApiRouter::new()
        .routes(routes!(create_greeting))
        .routes(routes!(get_customer_as_admin));
    let app = builder
        .serve(api, "kit-test", "The service kit under test")
        .await
        .unwrap();
    TestApp {
        address: format!("http://127.0.0.1:{}", app.port()),
        client: reqwest::Client::new(),
        app: Some(app),
        _database: database,
    }
}

/// Asserts a problem+json answer with `status` and `code`; returns the body.
pub async fn assert_problem(
    response: reqwest::Response,
    status: StatusCode,
    code: &str,
) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status.as_u16(), "status");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(body["type"], format!("urn:oms:problem:{code}"));
    body
}
