//! Drop-in replacements for axum's `Json`, `Path` and `Query` extractors
//! whose rejections are problem+json instead of axum's plain text:
//!
//! | rejection | status | code |
//! |---|---|---|
//! | body is not JSON | 400 | `MALFORMED_JSON` |
//! | JSON of the wrong shape or type | 422 | `INVALID_BODY` |
//! | no `Content-Type: application/json` | 415 | `UNSUPPORTED_MEDIA_TYPE` |
//! | body over the size limit | 413 | `PAYLOAD_TOO_LARGE` |
//! | body could not be read | 400 | `UNREADABLE_BODY` |
//! | path parameter of the wrong type | 400 | `INVALID_PATH` |
//! | query string of the wrong shape | 400 | `INVALID_QUERY` |

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::problem::Problem;

/// JSON body extractor and response, with problem+json rejections.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(Problem))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for Problem {
    fn from(rejection: JsonRejection) -> Self {
        let detail = rejection.body_text();
        let (code, title) = match &rejection {
            JsonRejection::JsonSyntaxError(_) => {
                ("MALFORMED_JSON", "The request body is not valid JSON")
            }
            JsonRejection::JsonDataError(_) => (
                "INVALID_BODY",
                "The request body does not have the expected shape",
            ),
            JsonRejection::MissingJsonContentType(_) => (
                "UNSUPPORTED_MEDIA_TYPE",
                "The request body must be application/json",
            ),
            _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ("PAYLOAD_TOO_LARGE", "The request body is too large")
            }
            _ => ("UNREADABLE_BODY", "The request body could not be read"),
        };
        Problem::new(rejection.status(), code, title).with_detail(detail)
    }
}

/// Path parameters extractor with problem+json rejections.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Problem))]
pub struct Path<T>(pub T);

impl From<PathRejection> for Problem {
    fn from(rejection: PathRejection) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "INVALID_PATH",
            "A path parameter is invalid",
        )
        .with_detail(rejection.body_text())
    }
}

/// Query string extractor with problem+json rejections.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for Problem {
    fn from(rejection: QueryRejection) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY",
            "The query string is invalid",
        )
        .with_detail(rejection.body_text())
    }
}
