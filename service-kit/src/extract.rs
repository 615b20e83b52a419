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
//!
//! [`ClientAddress`] is the address per-client limits key by: the peer's,
//! or the one a trusted proxy names in `OMS_CLIENT_IP_HEADER`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderName, StatusCode};
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

/// A status (or any upper-case enum) read in any case: simpler order
/// services send `"shipped"`, we answer `"SHIPPED"`. Deserializes the
/// string upper-cased into `T`; document the field with
/// `#[schema(value_type = T)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnyCase<T>(pub T);

impl<'de, T: serde::de::DeserializeOwned> serde::Deserialize<'de> for AnyCase<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        T::deserialize(serde::de::value::StringDeserializer::<D::Error>::new(
            text.to_ascii_uppercase(),
        ))
        .map(AnyCase)
    }
}

/// Which request header, if any, names the client's address (set by a
/// trusted reverse proxy).
#[derive(Debug, Clone, Default)]
pub struct ClientIpHeader(Option<HeaderName>);

impl ClientIpHeader {
    /// The header called `name`; `None`: use the peer address.
    ///
    /// # Errors
    /// When `name` is not a valid header name.
    pub fn new(name: Option<&str>) -> anyhow::Result<Self> {
        name.filter(|n| !n.is_empty())
            .map(|n| {
                HeaderName::try_from(n.to_ascii_lowercase())
                    .map_err(|e| anyhow::anyhow!("OMS_CLIENT_IP_HEADER {n:?}: {e}"))
            })
            .transpose()
            .map(Self)
    }
}

/// The client a request comes from, for per-client limits. An IPv6
/// client is its /64 network: one host usually holds all of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    fn of(parts: &Parts) -> Self {
        let header = parts
            .extensions
            .get::<ClientIpHeader>()
            .and_then(|h| h.0.as_ref());
        // A proxy appends the address it saw: the last entry is the one
        // the client cannot forge.
        let named = header
            .and_then(|name| parts.headers.get_all(name).iter().next_back())
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .and_then(|last| last.trim().parse::<IpAddr>().ok());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip());
        Self(network(
            named.or(peer).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(Ipv6Addr::from(segments))
            }
        },
        v4 => v4,
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(header: Option<&str>, headers: &[(&str, &str)], peer: &str) -> Parts {
        let mut request = axum::http::Request::builder();
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ClientIpHeader::new(header).unwrap());
        parts
            .extensions
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        parts
    }

    #[test]
    fn the_peer_address_unless_a_trusted_header_is_configured() {
        let forged = [("x-forwarded-for", "9.9.9.9")];
        assert_eq!(
            ClientAddress::of(&parts(None, &forged, "10.0.0.1:5000")).0,
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        let proxied = [("x-forwarded-for", "9.9.9.9, 203.0.113.7")];
        assert_eq!(
            ClientAddress::of(&parts(Some("X-Forwarded-For"), &proxied, "10.0.0.1:5000")).0,
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        let garbage = [("x-forwarded-for", "not an address")];
        assert_eq!(
            ClientAddress::of(&parts(Some("x-forwarded-for"), &garbage, "10.0.0.1:5000")).0,
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn any_case_reads_statuses_in_any_case_and_refuses_unknown_ones() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        #[serde(rename_all = "UPPERCASE")]
        enum Status {
            Shipped,
            Delivered,
        }
        let read = |json: &str| serde_json::from_str::<AnyCase<Status>>(json).map(|s| s.0);
        assert_eq!(read("\"shipped\"").unwrap(), Status::Shipped);
        assert_eq!(read("\"Delivered\"").unwrap(), Status::Delivered);
        assert_eq!(read("\"SHIPPED\"").unwrap(), Status::Shipped);
        let unknown = read("\"lost\"").unwrap_err().to_string();
        assert!(unknown.contains("LOST"), "{unknown}");
    }

    #[test]
    fn an_ipv6_client_is_its_64_network() {
        let a = ClientAddress::of(&parts(None, &[], "[2001:db8:1:2:aaaa::1]:443"));
        let b = ClientAddress::of(&parts(None, &[], "[2001:db8:1:2:bbbb::9]:443"));
        assert_eq!(a, b);
        assert_eq!(a.0, "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        let mapped = ClientAddress::of(&parts(None, &[], "[::ffff:192.0.2.1]:443"));
        assert_eq!(mapped.0, "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
