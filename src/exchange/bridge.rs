//! MCP 2026-07-28 clients, bridged to a handshake-era upstream (or, when the upstream speaks
//! 2026-07-28 too, passed through to it: `per_request.rs`).
//!
//! A 2026-07-28 client opens no session: each request carries its envelope in `_meta`. The
//! upstream here speaks 2025-xx and wants one, so the gateway keeps an upstream session per
//! caller (agent, or address for anonymous callers), opened with an initialize of its own and
//! reopened when it ends (idle expiry, an upstream 404). Each request then goes through the same
//! [`exchange`](super::exchange) as a 2025-xx client's, in that session: policy, limits, audit
//! and approvals are the same code. Only the shapes differ, and they are converted here:
//! `server/discover` is answered from the upstream's initialize result, results gain
//! `resultType` (and `ttlMs`/`cacheScope` on lists), and an approval the rule puts to the user is
//! an input-required round rather than an `elicitation/create` on a stream, as are the
//! upstream's own questions during a call (`rounds.rs`).

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::StatusCode;
use serde_json::{json, Value};

use super::{held, listen, param_headers, per_request, rounds, ExchangeError, Messages, Outcome};
use crate::gateway::Gateway;
use crate::protocol::modern::{self, Envelope};
use crate::protocol::{method, parse_body, version, Body, Message};
use crate::session::{BridgeCaller, Opening, Session};
use crate::upstream::{await_answer, Placement, Reply, Revision, UpstreamError};

/// One 2026-07-28 request from `agent`, whose envelope the edge has checked, judged by the
/// `scopes` its access token grants (each request brings its own: there is no session).
pub async fn modern(
    gateway: &Arc<Gateway>,
    agent: Option<Arc<str>>,
    scopes: Option<Arc<[String]>>,
    address: Option<IpAddr>,
    envelope: &Envelope,
    message: Message,
) -> Outcome {
    let caller = (agent.clone(), address.filter(|_| agent.is_none()), scopes);
    let opened = match gateway.upstream.revision().await {
        Ok(Revision::PerRequest(upstream)) => {
            per_request::caller_session(gateway, caller, address, &upstream)
                .map(|session| (session, per_request::discovered(&upstream)))
        }
        Ok(Revision::Handshake) => bridged_session(gateway, caller, address)
            .await
            .map(|(session, server)| (session, discovered(&server))),
        Err(err) => Err(err.into()),
    };
    let (session, discover) = match opened {
        Ok(opened) => opened,
        Err(err) => return Outcome::Failed(err),
    };
    let method = message.method().unwrap_or_default().to_owned();
    let id = message.id().cloned();
    if method == modern::SERVER_DISCOVER {
        gateway.record_lifecycle(&session, &message);
        return answered(json!({"jsonrpc": "2.0", "id": id, "result": discover}));
    }
    // A 2026-07-28 upstream serves its own listen streams: passed through like any request.
    if method == modern::SUBSCRIPTIONS_LISTEN && !session.modern_upstream {
        return listen::bridged(gateway, &session, &message).await;
    }
    if let Err(mismatch) = check_param_headers(gateway, &session, envelope, &message).await {
        return Outcome::Failed(mismatch);
    }
    if session.modern_upstream {
        return in_session(gateway, envelope, &session, message).await;
    }
    // The callers of one agent share its bridged upstream session, and each numbers its own
    // requests: two may send the same id at once, and an upstream that routes answers by id
    // would mix them up. The upstream sees an id of the gateway's, unique in the session, and
    // the client gets its own back.
    let own = gateway.bridge.request_id();
    let outcome = in_session(gateway, envelope, &session, message.with_id(own.clone())).await;
    with_client_id(outcome, &own, id.as_ref())
}

/// A request of a 2026-07-28 caller in its session (past discover, listen and the header
/// check): a round's retry resumed, or an exchange like any other, its outcome in 2026-07-28's
/// shapes.
async fn in_session(
    gateway: &Arc<Gateway>,
    envelope: &Envelope,
    session: &Arc<Session>,
    message: Message,
) -> Outcome {
    let method = message.method().unwrap_or_default().to_owned();
    let id = message.id().cloned();
    // A 2026-07-28 upstream keeps its own rounds (its `requestState`); only the gateway's are
    // taken off. A handshake-era one knows no rounds at all.
    let (message, round) = match take_round(message, session.modern_upstream) {
        Ok(taken) => taken,
        Err(outcome) => return outcome,
    };
    if let Some(Retry { state, answer }) = round {
        if rounds::is_round(&state) {
            let outcome = rounds::resume(gateway, envelope, session, message, &state, answer).await;
            return to_modern(outcome, &method, id.as_ref(), envelope).await;
        }
        if let Some(answer) = answer {
            if let Some(outcome) =
                held::answer_round(gateway, session, &message, &state, &answer).await
            {
                return to_modern(outcome, &method, id.as_ref(), envelope).await;
            }
        }
    }
    // A handshake-era upstream asks its questions on the call's stream: they become rounds.
    let call = (!session.modern_upstream).then(|| rounds::Call::of(session, &message));
    let outcome = super::exchange(gateway, session, session.version, message).await;
    let outcome = match call {
        Some(call) => rounds::watch(gateway, envelope, call, outcome),
        None => outcome,
    };
    to_modern(outcome, &method, id.as_ref(), envelope).await
}

/// A `tools/call`'s `Mcp-Param-*` headers against its arguments, as the tool's annotations
/// say (`param_headers.rs`). Skipped for a tool the caller may not see: the policy refuses the
/// call whatever its headers, and nothing is forwarded.
async fn check_param_headers(
    gateway: &Gateway,
    session: &Session,
    envelope: &Envelope,
    message: &Message,
) -> Result<(), ExchangeError> {
    let Some(tool) = message.tool_name() else {
        return Ok(());
    };
    let policy = gateway.policy.load();
    if !policy.tool_listed(session.agent.as_deref(), tool, session.scopes.as_deref()) {
        return Ok(());
    }
    param_headers::of_tool(gateway, session, tool)
        .await
        .check(&envelope.params, message.tool_arguments())
        .map_err(ExchangeError::ParamHeaderMismatch)
}

/// The caller's upstream session, opened now if it has none or it ended.
async fn bridged_session(
    gateway: &Arc<Gateway>,
    caller: BridgeCaller,
    address: Option<IpAddr>,
) -> Result<(Arc<Session>, Value), ExchangeError> {
    if let Some(known) = gateway.bridge.of(&gateway.sessions, &caller, false) {
        return Ok(known);
    }
    let max_sessions = gateway.config.limits.max_sessions;
    if gateway.sessions.len() >= max_sessions {
        return Err(ExchangeError::TooManySessions(max_sessions));
    }
    let init = json!({"jsonrpc": "2.0", "id": "mcpgate-bridge", "method": method::INITIALIZE,
        "params": {"protocolVersion": version::LATEST,
        // Asked for so that an approval, and the upstream's own questions during a call, can
        // be put to a 2026-07-28 client as rounds (`rounds.rs`); a client whose envelope lacks
        // the capability gets none, the gateway answers "method not found" for it. Not roots:
        // a server may ask for them outside any call, with no stream here to carry it.
        "capabilities": {"elicitation": {}, "sampling": {}},
        "clientInfo": {"name": "mcpgate", "version": env!("CARGO_PKG_VERSION")}}});
    let (answer, upstream_id) = ask(gateway, &init, None, version::LATEST).await?;
    let server = answer
        .get("result")
        .filter(|r| r.is_object())
        .cloned()
        .ok_or_else(|| UpstreamError::Refused {
            method: method::INITIALIZE,
            error: answer.to_string().chars().take(200).collect(),
        })?;
    let negotiated = server["protocolVersion"]
        .as_str()
        .and_then(|v| version::spoken(v.as_bytes()))
        .unwrap_or(version::ASSUMED);
    let initialized = json!({"jsonrpc": "2.0", "method": method::INITIALIZED});
    let placement = Placement {
        session_id: upstream_id.as_ref(),
        protocol_version: Some(negotiated),
        routing: None,
    };
    gateway
        .upstream
        .post(initialized.to_string().into(), placement)
        .await?;
    let opening = Opening {
        version: negotiated,
        address,
        modern_upstream: false,
        scopes: caller.2.clone(),
    };
    let session = gateway
        .bridge
        .open(
            &gateway.sessions,
            caller,
            upstream_id,
            opening,
            server.clone(),
        )
        .map_err(|full| ExchangeError::TooManySessions(full.0))?;
    if let Ok(Body::Single(message)) = parse_body(init.to_string().as_bytes()) {
        gateway.record_lifecycle(&session, &message);
    }
    Ok((session, server))
}

/// Sends the gateway's own request and reads its answer, in JSON or on a stream.
async fn ask(
    gateway: &Gateway,
    request: &Value,
    session_id: Option<&http::HeaderValue>,
    version: &'static str,
) -> Result<(Value, Option<http::HeaderValue>), UpstreamError> {
    let placement = Placement {
        session_id,
        protocol_version: Some(version),
        routing: None,
    };
    let within = gateway.config.limits.upstream_timeout;
    let (text, session_id) = match gateway
        .upstream
        .post(request.to_string().into(), placement)
        .await?
    {
        Reply::Json {
            status: StatusCode::NOT_FOUND,
            ..
        } if session_id.is_none() => return Err(gateway.upstream.endpoint_not_found()),
        Reply::Json {
            status,
            body,
            session_id,
        } if status.is_success() => (String::from_utf8_lossy(&body).into_owned(), session_id),
        Reply::Json { status, .. } | Reply::Accepted { status } => {
            return Err(UpstreamError::NoAnswer(status))
        }
        Reply::Stream { events, session_id } => (
            await_answer(events, &request["id"], within).await?,
            session_id,
        ),
    };
    let answer = serde_json::from_str(&text).map_err(|_| UpstreamError::Refused {
        method: method::INITIALIZE,
        error: text.chars().take(200).collect(),
    })?;
    Ok((answer, session_id))
}

/// `server/discover`'s result for a handshake-era upstream: its capabilities, instructions and
/// name, and the handshake-era revisions only. A client that negotiates (mcp 2.x "auto") is
/// told to initialize, and sees exactly what it sees talking to the upstream directly, in a
/// session that any replica can serve (sealed ids); bridged, its questions during a call would
/// be rounds held by one replica (`rounds.rs`). A client pinned to 2026-07-28 is still served,
/// bridged.
fn discovered(server: &Value) -> Value {
    let mut result = json!({
        "supportedVersions": version::SUPPORTED,
        "capabilities": server.get("capabilities").cloned().unwrap_or_else(|| json!({})),
    });
    if let Some(instructions) = server.get("instructions").filter(|i| i.is_string()) {
        result["instructions"] = instructions.clone();
    }
    if let Some(info) = server.get("serverInfo") {
        result["_meta"] = json!({ modern::SERVER_INFO_META: info });
    }
    if let Some(result) = result.as_object_mut() {
        modern::complete_result(result, modern::SERVER_DISCOVER);
    }
    result
}

/// A request repeated for a round: the round's state, and the client's answer to it.
struct Retry {
    state: String,
    answer: Option<Value>,
}

/// The answer to a repeated request (`inputResponses`, `requestState`) taken off it: a
/// handshake-era upstream knows neither, and an approval covers the call without them. With
/// `only_the_gateways`, a round the upstream started is left on the request for it. The round's
/// key is its state, so the answer is the response under that key (`None`: the client gave none).
#[allow(clippy::result_large_err)]
fn take_round(
    message: Message,
    only_the_gateways: bool,
) -> Result<(Message, Option<Retry>), Outcome> {
    let Some(mut params) = message.params() else {
        return Ok((message, None));
    };
    let Some(fields) = params.as_object_mut() else {
        return Ok((message, None));
    };
    let the_gateways = fields
        .get(modern::REQUEST_STATE)
        .and_then(Value::as_str)
        .is_some_and(held::is_own_round);
    if only_the_gateways && !the_gateways {
        return Ok((message, None));
    }
    let (responses, state) = (
        fields.remove(modern::INPUT_RESPONSES),
        fields.remove(modern::REQUEST_STATE),
    );
    if responses.is_none() && state.is_none() {
        return Ok((message, None));
    }
    let round = match (state, responses) {
        (Some(Value::String(state)), mut responses) => {
            let answer = responses
                .as_mut()
                .and_then(|r| r.get_mut(&state))
                .map(Value::take);
            Some(Retry { state, answer })
        }
        _ => None,
    };
    let mut whole: Value =
        serde_json::from_slice(&message.to_bytes()).expect("written from checked JSON");
    whole["params"] = params;
    match parse_body(whole.to_string().as_bytes()) {
        Ok(Body::Single(stripped)) => Ok((stripped, round)),
        _ => Err(Outcome::Failed(ExchangeError::UnknownElicitation(
            "the repeated request could not be read back".into(),
        ))),
    }
}

/// A handshake-era outcome in the shapes a 2026-07-28 client reads.
async fn to_modern(
    outcome: Outcome,
    method: &str,
    id: Option<&Value>,
    envelope: &Envelope,
) -> Outcome {
    match outcome {
        Outcome::Answered { status, body } => Outcome::Answered {
            status,
            body: complete(&body, method),
        },
        Outcome::Refused { answer, kind } => {
            let body = complete(answer.to_string().as_bytes(), method);
            let answer = serde_json::from_slice(&body).unwrap_or(answer);
            Outcome::Refused { answer, kind }
        }
        Outcome::Streamed(messages) => Outcome::Streamed(completed(messages, method)),
        Outcome::Held(held) => {
            if envelope.elicits() {
                if let Some((key, request)) = held.input_request().await {
                    return answered(modern::input_required(id, &key, request, &key));
                }
            }
            Outcome::Streamed(completed(held.into_messages(), method))
        }
        other @ (Outcome::Accepted | Outcome::Failed(_)) => other,
    }
}

/// What answers a request sent upstream under the gateway's id `own`, under the client's id.
fn with_client_id(outcome: Outcome, own: &Value, client: Option<&Value>) -> Outcome {
    let client = client.cloned().unwrap_or(Value::Null);
    let own_text = own.as_str().unwrap_or_default().to_owned();
    let own = own.clone();
    // Only a response is renamed: an upstream's request that borrowed the gateway's id keeps it.
    let renamed = move |text: &[u8]| -> Option<Value> {
        let mut answer = serde_json::from_slice::<Value>(text).ok()?;
        if answer.get("method").is_some() {
            return None;
        }
        let id = answer.get_mut("id").filter(|id| **id == own)?;
        *id = client.clone();
        Some(answer)
    };
    match outcome {
        Outcome::Answered { status, body } => Outcome::Answered {
            status,
            body: renamed(&body).map_or(body, |a| a.to_string().into()),
        },
        Outcome::Refused { answer, kind } => {
            let answer = renamed(answer.to_string().as_bytes()).unwrap_or(answer);
            Outcome::Refused { answer, kind }
        }
        Outcome::Streamed(messages) => Outcome::Streamed(Box::pin(messages.map(move |item| {
            item.map(|mut event| {
                if event.text().contains(&own_text) {
                    if let Some(answer) = renamed(event.text().as_bytes()) {
                        event.data = Some(answer.to_string().into());
                    }
                }
                event
            })
        }))),
        other @ (Outcome::Accepted | Outcome::Held(_) | Outcome::Failed(_)) => other,
    }
}

fn answered(answer: Value) -> Outcome {
    Outcome::Answered {
        status: StatusCode::OK,
        body: answer.to_string().into(),
    }
}

/// Each message of a stream as a 2026-07-28 client reads it: the answer completed, the rest as
/// they are.
fn completed(messages: Messages, method: &str) -> Messages {
    let method = method.to_owned();
    Box::pin(messages.map(move |item| {
        item.map(|mut event| {
            if event.text().contains("\"result\"") {
                let body = complete(event.text().as_bytes(), &method);
                event.data = Some(String::from_utf8_lossy(&body).into_owned().into());
            }
            event
        })
    }))
}

/// A JSON-RPC answer with its result completed (`modern::complete_result`); anything else as
/// it is.
fn complete(body: &[u8], method: &str) -> Bytes {
    let Ok(mut answer) = serde_json::from_slice::<Value>(body) else {
        return Bytes::copy_from_slice(body);
    };
    match answer.get_mut("result").and_then(Value::as_object_mut) {
        Some(result) => modern::complete_result(result, method),
        None => return Bytes::copy_from_slice(body),
    }
    answer.to_string().into()
}
