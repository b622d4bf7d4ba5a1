//! The gateway speaking MCP 2026-07-28 to an upstream that does (`upstream::Revision`).
//!
//! Such an upstream keeps no session, so the gateway's session stands alone: for a 2026-07-28
//! client, one per caller as for the bridge (`bridge.rs`), whose requests go as they came, their
//! envelope checked at the edge; for a handshake-era client whose initialize the upstream
//! refused, one the gateway opens itself, answering initialize from the upstream's
//! `server/discover`. Either way each message is policed by the same `exchange()` on its body,
//! and what the policy let through is sent with the `Mcp-Method` / `Mcp-Name` headers written
//! from that very message: an intermediary routing on them sees what the upstream executes.

use std::net::IpAddr;
use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Value};

use super::{asked, ExchangeError, Opened, Outcome};
use crate::gateway::Gateway;
use crate::protocol::modern::{self, Routing};
use crate::protocol::{version, Kind, Message};
use crate::session::{BridgeCaller, Opening, Session};
use crate::upstream::{Placement, Reply, UpstreamError};

/// Sends `message` of a session whose upstream speaks 2026-07-28.
pub(super) async fn send(
    gateway: &Arc<Gateway>,
    session: &Arc<Session>,
    message: &Message,
) -> Result<Reply, UpstreamError> {
    if message.kind != Kind::Request {
        // Transports spec 2026-07-28: over HTTP a client sends only requests (cancelling is
        // closing the request's stream). A handshake-era client's `notifications/initialized`
        // or answer is taken here and goes no further.
        return Ok(Reply::Accepted {
            status: StatusCode::ACCEPTED,
        });
    }
    let mut routing = Routing::of(message);
    if let Some(tool) = message.tool_name() {
        routing.params = super::param_headers::of_tool(gateway, session, tool)
            .await
            .headers_for(message.tool_arguments());
    }
    let asks_client = asked::asks_client(session, message);
    let body = if session.version == modern::VERSION {
        message.to_bytes()
    } else {
        // A handshake-era client: the envelope is the gateway's, declaring what the gateway can
        // put to the client for the upstream (`asked.rs`), or nothing.
        let info = json!({"name": "mcpgate", "version": env!("CARGO_PKG_VERSION")});
        let capabilities = match asks_client {
            true => asked::declared_capabilities(),
            false => json!({}),
        };
        message
            .with_meta(modern::envelope_meta(capabilities, info))
            .to_bytes()
    };
    let placement = Placement {
        session_id: None,
        protocol_version: Some(modern::VERSION),
        routing: Some(&routing),
    };
    let reply = gateway.upstream.post(body.clone(), placement).await;
    let reply = match reply {
        Ok(reply) if asks_client && asked::may_ask(&reply) => {
            let request = serde_json::from_slice(&body).expect("the gateway wrote this JSON");
            return Ok(asked::with_rounds(
                gateway.clone(),
                session.clone(),
                request,
                routing,
                reply,
            ));
        }
        other => other,
    };
    match reply {
        // 2026-07-28 servers answer "method not found" with HTTP 404, which a handshake-era
        // client reads as "your session is gone" (transports spec 2025-06-18): the JSON-RPC
        // error is its answer, under 200.
        Ok(Reply::Json {
            status: StatusCode::NOT_FOUND,
            body,
            session_id,
        }) if session.version != modern::VERSION && !body.is_empty() => Ok(Reply::Json {
            status: StatusCode::OK,
            body,
            session_id,
        }),
        other => other,
    }
}

/// The session a 2026-07-28 caller's requests are policed in, in front of a 2026-07-28
/// upstream: the caller's, or one opened now (no upstream is asked: it keeps none).
pub(super) fn caller_session(
    gateway: &Gateway,
    caller: BridgeCaller,
    address: Option<IpAddr>,
    discovered: &Value,
) -> Result<Arc<Session>, ExchangeError> {
    if let Some((session, _)) = gateway.bridge.of(&gateway.sessions, &caller, true) {
        return Ok(session);
    }
    let opening = Opening {
        version: modern::VERSION,
        address,
        modern_upstream: true,
        scopes: caller.2.clone(),
    };
    gateway
        .bridge
        .open(&gateway.sessions, caller, None, opening, discovered.clone())
        .map_err(|full| ExchangeError::TooManySessions(full.0))
}

/// `server/discover` in front of a 2026-07-28 upstream: its own answer, with every revision
/// the gateway serves (a handshake-era client is served too, by [`open_here`]).
pub(super) fn discovered(upstream: &Value) -> Value {
    let mut result = upstream.clone();
    if let Some(fields) = result.as_object_mut() {
        fields.insert(modern::SUPPORTED_VERSIONS.into(), json!(version::ALL));
        modern::complete_result(fields, modern::SERVER_DISCOVER);
    }
    result
}

/// Did the upstream refuse a handshake-era initialize (rather than fail to be heard)? Then it
/// may be one that dropped the handshake.
pub(super) fn refused_initialize(reply: &Result<Reply, UpstreamError>) -> bool {
    match reply {
        Ok(Reply::Json { status, body, .. }) => {
            !status.is_success()
                || serde_json::from_slice::<Value>(body).is_ok_and(|a| a.get("error").is_some())
        }
        Ok(Reply::Accepted { .. }) => true,
        Ok(Reply::Stream { .. }) => false,
        Err(err) => !err.is_unheard(),
    }
}

/// A handshake-era client's initialize, answered by the gateway for an upstream that speaks
/// only 2026-07-28: the result is the upstream's `server/discover` in initialize's shape, at
/// the revision the client asked for (or the newest spoken here), and the session is the
/// gateway's alone.
pub(super) fn open_here(
    gateway: &Gateway,
    agent: Option<Arc<str>>,
    scopes: Option<Arc<[String]>>,
    address: Option<IpAddr>,
    message: &Message,
    discovered: &Value,
) -> Opened {
    let asked = message
        .params()
        .and_then(|params| params["protocolVersion"].as_str().map(str::to_owned));
    let negotiated = asked
        .and_then(|v| version::spoken(v.as_bytes()))
        .unwrap_or(version::LATEST);
    let server_info = discovered
        .pointer(&format!(
            "/_meta/{}",
            modern::SERVER_INFO_META.replace('/', "~1")
        ))
        .cloned()
        .unwrap_or_else(|| json!({"name": "mcpgate", "version": env!("CARGO_PKG_VERSION")}));
    let mut result = json!({
        "protocolVersion": negotiated,
        "capabilities": discovered.get("capabilities").cloned().unwrap_or_else(|| json!({})),
        "serverInfo": server_info,
    });
    if let Some(instructions) = discovered.get("instructions").filter(|i| i.is_string()) {
        result["instructions"] = instructions.clone();
    }
    let opening = Opening {
        version: negotiated,
        address,
        modern_upstream: true,
        scopes,
    };
    let session = match gateway
        .sessions
        .open(None, agent, message.declares_elicitation(), opening)
    {
        Ok(session) => session,
        Err(full) => {
            return Opened {
                outcome: Outcome::Failed(ExchangeError::TooManySessions(full.0)),
                session: None,
            }
        }
    };
    gateway.record_lifecycle(&session, message);
    let answer = json!({"jsonrpc": "2.0", "id": message.id(), "result": result});
    Opened {
        outcome: Outcome::Answered {
            status: StatusCode::OK,
            body: answer.to_string().into(),
        },
        session: Some(session),
    }
}
