//! The admin API and page under `/admin`: the approval queue, worked by people.
//!
//! Every API route needs `Authorization: Bearer <--admin-token>`; without a configured token the
//! admin API does not exist. The page itself holds no data: it signs in with the token and then
//! calls the same API.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::Event;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::approval::{Approval, DecideError};
use crate::gateway::Gateway;

const PAGE: &str = include_str!("page.html");

/// The admin routes, or `None` when no admin token is configured.
pub fn router(gateway: Arc<Gateway>) -> Option<Router> {
    gateway.config.approvals.admin_token.as_ref()?;
    let api = Router::new()
        .route("/admin/approvals", get(list))
        .route("/admin/approvals/events", get(events))
        .route("/admin/approvals/{id}/approve", post(approve))
        .route("/admin/approvals/{id}/reject", post(reject))
        .route_layer(middleware::from_fn_with_state(
            gateway.clone(),
            require_token,
        ));
    Some(
        Router::new()
            .route("/admin", get(|| async { Html(PAGE) }))
            .merge(api)
            .with_state(gateway),
    )
}

async fn require_token(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    let expected = gateway
        .config
        .approvals
        .admin_token
        .as_deref()
        .unwrap_or_default();
    if token_matches(request.headers(), expected) {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, r#"Bearer realm="mcpgate-admin""#)],
            Json(json!({"error": "send Authorization: Bearer <admin token> (--admin-token)"})),
        )
            .into_response()
    }
}

/// Compares digests in constant time: neither the token's bytes nor its length leak through
/// how long a wrong guess takes.
fn token_matches(headers: &HeaderMap, expected: &str) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    !expected.is_empty() && bool::from(a.ct_eq(&b))
}

async fn list(State(gateway): State<Arc<Gateway>>) -> Json<Vec<Approval>> {
    Json(gateway.approvals.list())
}

async fn events(State(gateway): State<Arc<Gateway>>) -> Response {
    let changes = tokio_stream::wrappers::BroadcastStream::new(gateway.approvals.subscribe());
    let stream = changes.filter_map(|change| async move {
        // A lagging reader skips what it missed; the page re-reads the list on every event.
        let approval = change.ok()?;
        let data = serde_json::to_string(&approval).ok()?;
        Some(Ok::<_, Infallible>(
            Event::default().event("approval").data(data),
        ))
    });
    crate::transport::sse::sse_response(stream)
}

async fn approve(state: State<Arc<Gateway>>, id: Path<String>, body: Bytes) -> Response {
    decide(state, id, body, true)
}

async fn reject(state: State<Arc<Gateway>>, id: Path<String>, body: Bytes) -> Response {
    decide(state, id, body, false)
}

fn decide(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    body: Bytes,
    approve: bool,
) -> Response {
    let reason = match reason_of(&body) {
        Ok(reason) => reason,
        Err(message) => {
            return (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
        }
    };
    match gateway
        .approvals
        .decide(&id, approve, "admin", reason, Instant::now())
    {
        Ok(approval) => {
            gateway.record_approval(&approval);
            Json(approval).into_response()
        }
        Err(err @ DecideError::NotFound(_)) => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": err.to_string() })),
        )
            .into_response(),
        Err(err) => (
            StatusCode::CONFLICT,
            Json(json!({ "error": err.to_string() })),
        )
            .into_response(),
    }
}

/// The optional body: `{"reason": "..."}`, or nothing.
fn reason_of(body: &[u8]) -> Result<Option<String>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match crate::json::parse(body) {
        Ok(Value::Object(fields)) => match fields.get("reason") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(reason)) => Ok(Some(reason.clone())),
            Some(_) => Err("\"reason\" must be a string".into()),
        },
        _ => Err(r#"the body must be empty or {"reason": "..."}"#.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_the_exact_token_matches() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(token_matches(&headers, "s3cret"));
        assert!(!token_matches(&headers, "s3cre"));
        assert!(!token_matches(&headers, "s3cret2"));
        assert!(!token_matches(&HeaderMap::new(), "s3cret"));
        assert!(
            !token_matches(&HeaderMap::new(), ""),
            "an empty token never opens the API"
        );
    }

    #[test]
    fn the_reason_body_is_optional_but_checked() {
        assert_eq!(reason_of(b""), Ok(None));
        assert_eq!(
            reason_of(br#"{"reason":"looks fine"}"#),
            Ok(Some("looks fine".into()))
        );
        assert_eq!(
            reason_of(br#"{"reason":5}"#),
            Err("\"reason\" must be a string".into())
        );
        assert_eq!(
            reason_of(b"nope"),
            Err(r#"the body must be empty or {"reason": "..."}"#.into())
        );
    }
}
