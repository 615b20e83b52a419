//! The layers every service's router gets: body size limit, request ids,
//! `X-Content-Type-Options: nosniff` on every answer,
//! request spans that continue the caller's W3C trace, HTTP metrics, and
//! problem+json answers for unknown routes and methods.

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use event_runtime::trace::TraceContext;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::SharedAuthenticator;
use crate::extract::ClientIpHeader;
use crate::problem::Problem;

/// Wraps `router` with the common layers.
pub fn with_common_layers(
    router: Router,
    body_limit: usize,
    authenticator: SharedAuthenticator,
    client_ip_header: ClientIpHeader,
) -> Router {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::Extension(authenticator))
        .layer(axum::Extension(client_ip_header))
        .layer(middleware::from_fn(record_metrics))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        // Browsers must take every answer for the type it declares.
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            axum::http::header::X_CONTENT_TYPE_OPTIONS,
            axum::http::HeaderValue::from_static("nosniff"),
        ))
}

fn request_span(request: &Request) -> tracing::Span {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned());
    // The ids people search by: an order's, when the path names one
    // (handlers that create an order record it themselves).
    let order_id = request
        .uri()
        .path()
        .strip_prefix("/orders/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|id| id.parse::<uuid::Uuid>().ok());
    let span = tracing::info_span!(
        "http_request",
        method = %request.method(),
        uri = %request.uri().path(),
        route = route.unwrap_or_default(),
        request_id = header("x-request-id").unwrap_or_default(),
        order_id = tracing::field::Empty,
    );
    if let Some(order_id) = order_id {
        span.record("order_id", tracing::field::display(order_id));
    }
    TraceContext {
        traceparent: header("traceparent"),
        tracestate: header("tracestate"),
    }
    .set_as_parent_of(&span);
    span
}

/// A method as a metrics label: the standard ones by name, any other as
/// `OTHER`, so that clients cannot grow `/metrics` with made-up methods.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("oms_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("oms_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

async fn not_found(request: Request) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "NOT_FOUND", "No such route").with_detail(format!(
        "{} {} does not exist",
        request.method(),
        request.uri().path()
    ))
}

async fn method_not_allowed(request: Request) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "Method not allowed",
    )
    .with_detail(format!(
        "{} is not allowed on {}",
        request.method(),
        request.uri().path()
    ))
}
