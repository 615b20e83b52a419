//! Test 7 of the foundation: body rejections as problem+json, a valid
//! OpenAPI document, the docs page; plus health, readiness, metrics,
//! authentication rules, and the SQLite default.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::{Store, assert_problem, spawn_app, spawn_app_on};

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/greetings"))
        .header("content-type", "application/json")
        .body(r#"{"name": "Ada", "count": "#)
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, StatusCode::BAD_REQUEST, "MALFORMED_JSON").await;
    assert!(body["detail"].as_str().unwrap().contains("EOF"), "{body}");
}

#[tokio::test]
async fn a_wrong_type_is_a_422_problem_naming_the_field() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/greetings"))
        .json(&json!({"name": "Ada", "count": "three"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY").await;
    assert!(body["detail"].as_str().unwrap().contains("count"), "{body}");

    let negative = app
        .client
        .post(app.url("/greetings"))
        .json(&json!({"name": "Ada", "count": -1}))
        .send()
        .await
        .unwrap();
    assert_problem(negative, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY").await;
}

#[tokio::test]
async fn an_oversized_body_is_a_413_problem() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/greetings"))
        .json(&json!({"name": "x".repeat(4096), "count": 1}))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test]
async fn a_missing_content_type_is_a_415_problem() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/greetings"))
        .body(r#"{"name":"Ada","count":1}"#)
        .send()
        .await
        .unwrap();
    assert_problem(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
}

#[tokio::test]
async fn a_valid_body_is_accepted() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/greetings"))
        .json(&json!({"name": "Ada", "count": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        json!({"name": "Ada", "count": 3})
    );
}

#[tokio::test]
async fn unknown_routes_methods_and_bad_path_parameters_are_problems() {
    let app = spawn_app().await;
    let missing = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_problem(missing, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let method = app
        .client
        .delete(app.url("/greetings"))
        .send()
        .await
        .unwrap();
    assert_problem(method, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
    let path = app
        .client
        .get(app.url("/admin/customers/not-a-uuid"))
        .bearer_auth("admin")
        .send()
        .await
        .unwrap();
    assert_problem(path, StatusCode::BAD_REQUEST, "INVALID_PATH").await;
}

#[tokio::test]
async fn openapi_document_is_valid_and_lists_every_route() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let spec = oas3::from_json(&text).expect("a valid OpenAPI 3.1 document");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    let paths = spec.paths.as_ref().unwrap();
    for path in [
        "/greetings",
        "/admin/customers/{id}",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the document");
    }
    let components = spec.components.as_ref().unwrap();
    assert!(components.schemas.contains_key("Problem"));
    assert!(components.schemas.contains_key("Greeting"));
    assert!(components.security_schemes.contains_key("bearer"));

    // Every operation that can meet a busy database documents its 503.
    let document: serde_json::Value = serde_json::from_str(&text).unwrap();
    let unavailable = &document["paths"]["/greetings"]["post"]["responses"]["503"];
    assert!(
        unavailable["headers"]["Retry-After"].is_object(),
        "{unavailable}"
    );
    assert!(document["paths"]["/healthz"]["get"]["responses"]["503"].is_null());
}

#[tokio::test]
async fn docs_ui_is_served_from_the_binary() {
    let app = spawn_app().await;
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    let initializer = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(initializer.status(), 200);
    assert!(initializer.text().await.unwrap().contains("/openapi.json"));
    let redirect = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(redirect.status(), 200, "/docs leads to the page");
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap(),
        json!({"database": "ok", "kafka": "ok", "outbox_relay": "ok", "consumers": "ok"})
    );
    app.client.get(app.url("/healthz")).send().await.unwrap();
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("oms_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/healthz\""), "{metrics}");
}

#[tokio::test]
async fn readiness_fails_when_the_database_goes_away() {
    let app = spawn_app().await;
    app.app
        .as_ref()
        .unwrap()
        .db()
        .clone()
        .close()
        .await
        .unwrap();
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    let body = assert_problem(ready, StatusCode::SERVICE_UNAVAILABLE, "NOT_READY").await;
    assert_ne!(body["database"], "ok");
    assert_eq!(body["kafka"], "ok");
}

#[tokio::test]
async fn bearer_tokens_are_required_and_roles_enforced() {
    let app = spawn_app().await;
    let url = app.url(&format!("/admin/customers/{}", uuid::Uuid::nil()));
    let anonymous = app.client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let forged = app
        .client
        .get(&url)
        .bearer_auth("forged")
        .send()
        .await
        .unwrap();
    assert_problem(forged, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let customer = app
        .client
        .get(&url)
        .bearer_auth("customer")
        .send()
        .await
        .unwrap();
    assert_problem(customer, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let admin = app
        .client
        .get(&url)
        .bearer_auth("admin")
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
}

#[tokio::test]
async fn without_an_authenticator_every_token_is_refused() {
    let app = spawn_app_on(Store::Postgres, false).await;
    let url = app.url(&format!("/admin/customers/{}", uuid::Uuid::nil()));
    let admin = app
        .client
        .get(&url)
        .bearer_auth("admin")
        .send()
        .await
        .unwrap();
    assert_problem(admin, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn runs_on_embedded_sqlite_and_stops_cleanly() {
    let dir = std::env::temp_dir().join(format!("oms-kit-{}", uuid::Uuid::new_v4()));
    let app = spawn_app_on(Store::Sqlite(dir.clone()), true).await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(dir.join("kit.sqlite").exists());
    let address = app.url("/healthz");
    let client = app.client.clone();
    app.stop().await;
    assert!(
        client.get(&address).send().await.is_err(),
        "the server stopped listening"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// Made-up HTTP methods and routes do not become metrics labels: whatever
/// a client sends, `/metrics` keeps a fixed set of series.
#[tokio::test]
async fn made_up_methods_and_routes_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    for n in 0..20 {
        let method = reqwest::Method::from_bytes(format!("RANDOM{n}").as_bytes()).unwrap();
        app.client
            .request(method.clone(), app.url("/healthz"))
            .send()
            .await
            .unwrap();
        app.client
            .request(method, app.url(&format!("/no-such-route-{n}")))
            .send()
            .await
            .unwrap();
    }
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("RANDOM"), "{metrics}");
    assert!(!metrics.contains("no-such-route"), "{metrics}");
    assert!(metrics.contains("method=\"OTHER\""), "{metrics}");
}

/// A client that sends its headers byte by byte (slowloris) is cut off
/// once the header-read timeout (2 s here) has passed, instead of holding
/// its connection and task for as long as it trickles.
#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let address = app.url("").trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut cut_off = false;
    for byte in request {
        if stream.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        let mut answer = [0u8; 256];
        match tokio::time::timeout(
            std::time::Duration::from_millis(250),
            stream.read(&mut answer),
        )
        .await
        {
            Ok(Ok(0) | Err(_)) => {
                cut_off = true;
                break;
            }
            Ok(Ok(n)) => {
                let text = String::from_utf8_lossy(&answer[..n]).into_owned();
                assert!(
                    text.starts_with("HTTP/1.1 408"),
                    "unexpected answer: {text}"
                );
                cut_off = true;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(
        cut_off,
        "the server let a client trickle {} header bytes over {} s",
        request.len(),
        request.len() / 4
    );
}
