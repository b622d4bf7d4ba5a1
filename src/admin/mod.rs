//! The admin API and page under `/admin`: the approval queue, worked by people.
//!
//! Every API route needs `Authorization: Bearer <--admin-token>`; without a configured token the
//! admin API does not exist. Each token names its reviewer (`--admin-token NAME=TOKEN`; a plain
//! token is "admin"), and decisions are recorded under that name. The page itself holds no data:
//! it signs in with a token and then calls the same API.
//!
//! The page shows what agents sent, so it is served as if that were hostile: no inline script
//! (a Content-Security-Policy that allows only the page's own script and style files), nothing
//! sniffed, never framed, never cached; the API's answers carry the same headers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::approval::DecideError;
use crate::gateway::Gateway;
use crate::protocol::SseEvent;
use crate::state::QueueError;

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// What the page may load and do: its own script and style, calls to its own API, no frames,
/// no forms posted anywhere, no plugins.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The reviewer whose token a request carried.
#[derive(Debug, Clone)]
struct ReviewerName(String);

/// The admin routes, or `None` when no admin token is configured.
pub fn router(gateway: Arc<Gateway>) -> Option<Router> {
    gateway.config.approvals.admin_tokens().next()?;
    let api = Router::new()
        .route("/admin/approvals", get(list))
        .route("/admin/pins", get(pins))
        .route("/admin/approvals/events", get(events))
        .route("/admin/approvals/{id}/approve", post(approve))
        .route("/admin/approvals/{id}/reject", post(reject))
        .route_layer(middleware::from_fn_with_state(
            gateway.clone(),
            require_token,
        ));
    let asset = |content_type: &'static str, body: &'static str| {
        get(move || async move { ([(header::CONTENT_TYPE, content_type)], body) })
    };
    Some(
        Router::new()
            .route("/admin", get(|| async { Html(PAGE) }))
            .route(
                "/admin/page.js",
                asset("text/javascript; charset=utf-8", SCRIPT),
            )
            .route("/admin/page.css", asset("text/css; charset=utf-8", STYLE))
            .merge(api)
            .layer(middleware::from_fn(guard_headers))
            .with_state(gateway),
    )
}

/// On every admin response, the page's and the API's alike.
async fn guard_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn require_token(
    State(gateway): State<Arc<Gateway>>,
    mut request: Request,
    next: Next,
) -> Response {
    let reviewer = reviewer_of(request.headers(), gateway.config.approvals.admin_tokens());
    if let Some(name) = reviewer {
        request
            .extensions_mut()
            .insert(ReviewerName(name.to_owned()));
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

/// The reviewer whose token the request presents. Compares digests in constant time, with every
/// token: neither a token's bytes nor its length nor which one matched leak through how long a
/// wrong guess takes.
fn reviewer_of<'t>(
    headers: &HeaderMap,
    tokens: impl Iterator<Item = (&'t str, &'t str)>,
) -> Option<&'t str> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let digest = Sha256::digest(presented.as_bytes());
    let mut found = None;
    for (name, token) in tokens {
        let matches = bool::from(digest.ct_eq(&Sha256::digest(token.as_bytes())));
        if matches && !token.is_empty() && found.is_none() {
            found = Some(name);
        }
    }
    found
}

/// Tools whose definition breaks its pin: what the upstream offers now, and the definition that
/// matched the pin when this gateway last saw one (absent when it never did).
async fn pins(State(gateway): State<Arc<Gateway>>) -> Json<Value> {
    let policy = gateway.policy.load();
    let broken: Vec<Value> = gateway
        .pins
        .all_broken(&policy)
        .into_iter()
        .map(|b| {
            json!({"tool": b.tool, "problem": b.problem.to_string(),
                "definition": b.definition, "reviewed": b.reviewed})
        })
        .collect();
    Json(json!({ "mode": format!("{:?}", policy.pin_mode()).to_lowercase(), "broken": broken }))
}

async fn list(State(gateway): State<Arc<Gateway>>) -> Response {
    match gateway.approvals.list().await {
        Ok(all) => Json(all).into_response(),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": err.to_string() })),
        )
            .into_response(),
    }
}

async fn events(State(gateway): State<Arc<Gateway>>) -> Response {
    let changes = tokio_stream::wrappers::BroadcastStream::new(gateway.approvals.subscribe());
    let stream = changes.filter_map(|change| async move {
        // A lagging reader skips what it missed; the page re-reads the list on every event.
        let approval = change.ok()?;
        let data = serde_json::to_string(&approval).ok()?;
        Some(SseEvent {
            event: Some("approval".into()),
            data: Some(data.into()),
            ..SseEvent::default()
        })
    });
    crate::transport::sse::events_response(stream)
}

async fn approve(
    state: State<Arc<Gateway>>,
    id: Path<String>,
    reviewer: Extension<ReviewerName>,
    body: Bytes,
) -> Response {
    decide(state, id, reviewer, body, true).await
}

async fn reject(
    state: State<Arc<Gateway>>,
    id: Path<String>,
    reviewer: Extension<ReviewerName>,
    body: Bytes,
) -> Response {
    decide(state, id, reviewer, body, false).await
}

async fn decide(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    Extension(ReviewerName(reviewer)): Extension<ReviewerName>,
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
        .decide(&id, approve, &reviewer, reason)
        .await
    {
        Ok(approval) => {
            gateway.record_approval(&approval);
            Json(approval).into_response()
        }
        Err(err @ QueueError::State(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": err.to_string() })),
        )
            .into_response(),
        Err(err @ QueueError::Decide(DecideError::NotFound(_))) => (
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

    fn token_matches(headers: &HeaderMap, expected: &str) -> bool {
        reviewer_of(headers, [("admin", expected)].into_iter()).is_some()
    }

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
    fn each_token_names_its_reviewer() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer bobs-token"),
        );
        let tokens = [("alice", "alices-token"), ("bob", "bobs-token")];
        assert_eq!(reviewer_of(&headers, tokens.into_iter()), Some("bob"));
        assert_eq!(reviewer_of(&HeaderMap::new(), tokens.into_iter()), None);
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
