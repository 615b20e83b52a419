//! The OpenAPI document, built from the handlers' annotations (utoipa), and
//! the docs UI (Swagger UI, compiled into the binary: nothing is fetched at
//! build or run time).

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi};
use utoipa::{PartialSchema, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use crate::problem::Problem;

/// Name of the bearer security scheme handlers refer to:
/// `security(("bearer" = []))`.
pub const BEARER: &str = "bearer";

/// Completes a service's document: title, version, description, the bearer
/// security scheme and the `Problem` schema.
pub fn finish(mut openapi: OpenApi, title: &str, description: &str) -> OpenApi {
    openapi.info = InfoBuilder::new()
        .title(title)
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(description))
        .build();
    let components = openapi
        .components
        .take()
        .unwrap_or_else(|| ComponentsBuilder::new().build());
    let mut components = components;
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("An access token from customer-svc's POST /auth/token"))
                .build(),
        ),
    );
    components
        .schemas
        .insert(Problem::name().into_owned(), Problem::schema());
    openapi.components = Some(components);
    openapi
}

/// `/openapi.json` and `/docs`.
pub fn docs_router(openapi: OpenApi) -> Router {
    SwaggerUi::new("/docs").url("/openapi.json", openapi).into()
}
