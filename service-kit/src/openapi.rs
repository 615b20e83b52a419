//! The OpenAPI document, built from the handlers' annotations (utoipa), and
//! the docs UI (Swagger UI, compiled into the binary: nothing is fetched at
//! build or run time).

use axum::Router;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use crate::problem::Problem;

/// Name of the bearer security scheme handlers refer to:
/// `security(("bearer" = []))`.
pub const BEARER: &str = "bearer";

/// Completes a service's document: title, version, description, the bearer
/// security scheme, the `Problem` schema, and on every operation that has
/// none the 503 that any of them answers when the database cannot take the
/// request now ([`Problem::database`]).
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
    for (path, item) in &mut openapi.paths.paths {
        // Liveness and metrics never touch the database.
        if matches!(path.as_str(), "/healthz" | "/metrics") {
            continue;
        }
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            operation
                .responses
                .responses
                .entry("503".to_owned())
                .or_insert_with(|| RefOr::T(unavailable_response()));
        }
    }
    openapi
}

/// 503 `DATABASE_BUSY` or `DATABASE_UNAVAILABLE`, with `Retry-After`.
fn unavailable_response() -> Response {
    ResponseBuilder::new()
        .description(
            "The database cannot take the request now (`DATABASE_BUSY`, \
             `DATABASE_UNAVAILABLE`); nothing was written: retry after `Retry-After` seconds",
        )
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer))
                .description(Some("Seconds to wait before retrying"))
                .build(),
        )
        .content(
            crate::problem::PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(Problem::name())))
                .build(),
        )
        .build()
}

/// `/openapi.json` and `/docs`.
pub fn docs_router(openapi: OpenApi) -> Router {
    SwaggerUi::new("/docs").url("/openapi.json", openapi).into()
}
