//! [`TestClient`]: the one HTTP client every service's tests call their
//! service with. A call names the status it expects and fails the test
//! with the answer's body when another comes, so a test reads as the
//! conversation it checks.

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

/// Calls one service at its base URL.
#[derive(Debug, Clone)]
pub struct TestClient {
    http: reqwest::Client,
    base: String,
}

impl TestClient {
    /// A client of the service at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.into(),
        }
    }

    /// The service's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `method path` with an optional bearer token and JSON body, and
    /// returns the answer whatever its status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request
            .send()
            .await
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
    }

    /// As [`send`](Self::send), failing the test (with the answer's body)
    /// unless the status is `expected`; returns the body as JSON (`null`
    /// when empty).
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        expected: StatusCode,
    ) -> Value {
        let response = self.send(method.clone(), path, token, body).await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, expected, "{method} {path}: {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("{method} {path}: not JSON ({error}): {text}"))
        }
    }

    /// `GET path`, expecting 200; the body.
    pub async fn get_ok(&self, path: &str, token: Option<&str>) -> Value {
        self.expect(Method::GET, path, token, None, StatusCode::OK)
            .await
    }

    /// `GET path`: the body on 200, `None` on 404; any other status fails
    /// the test.
    pub async fn find(&self, path: &str, token: Option<&str>) -> Option<Value> {
        let response = self.send(Method::GET, path, token, None).await;
        match response.status() {
            StatusCode::OK => Some(response.json().await.expect("a JSON body")),
            StatusCode::NOT_FOUND => None,
            other => panic!(
                "GET {path}: {other}: {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }
}
