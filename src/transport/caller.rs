//! Who is calling: the agent (from its key), its session (which must be its own), and whether it
//! may have one more request in flight.

use std::sync::Arc;

use axum::http::{HeaderMap, Method};

use super::error::GatewayError;
use super::headers;
use crate::admission::Admitted;
use crate::audit::AuditDecision;
use crate::exchange::ExchangeError;
use crate::gateway::{Gateway, ResumeError};
use crate::session::Session;

/// The agent presenting the request's key. A refused key is audited and logged by the caller
/// (`audit_refusal`), never the key itself.
pub fn identify(gateway: &Gateway, headers: &HeaderMap) -> Result<Option<Arc<str>>, GatewayError> {
    Ok(gateway.agents.identify(headers)?)
}

/// The caller's live session, resumed from its sealed token on whichever replica this is. A
/// session belongs to the agent that opened it: any other caller presenting its token (a stolen
/// one) is told it does not exist, as is a tampered, expired or ended one.
pub async fn session_of(
    gateway: &Gateway,
    headers: &HeaderMap,
    agent: Option<&Arc<str>>,
) -> Result<Arc<Session>, GatewayError> {
    let token = headers::session_id(headers)?.ok_or(GatewayError::MissingSession)?;
    gateway
        .resume_session(token, agent)
        .await
        .map_err(|err| match err {
            ResumeError::Unknown => GatewayError::UnknownSession,
            ResumeError::Full(max) => ExchangeError::TooManySessions(max).into(),
        })
}

/// A refusal at the edge that says something about who is probing (401: a key no agent has;
/// 404: a session that is not the caller's) is audited, within the gateway's budget for them.
/// Keys are never written; the session id presented is.
pub fn audit_refusal(gateway: &Gateway, headers: &HeaderMap, method: &Method, err: &GatewayError) {
    let decision = match err {
        GatewayError::Unauthorized(_) => AuditDecision::Unauthorized,
        GatewayError::UnknownSession => AuditDecision::UnknownSession,
        _ => return,
    };
    let agent = gateway.agents.identify(headers).ok().flatten();
    let session = headers::session_id(headers).ok().flatten();
    let reason = err.to_string();
    gateway.record_edge_refusal(
        decision,
        agent.as_deref(),
        session,
        method.as_str(),
        &reason,
    );
}

/// Counts the request against its agent, or its session when the agent is anonymous.
pub fn admit<'g>(gateway: &'g Gateway, session: &Session) -> Result<Admitted<'g>, GatewayError> {
    let key = session.agent.as_ref().unwrap_or(&session.id);
    gateway
        .in_flight
        .admit(key)
        .ok_or(GatewayError::TooManyInFlight(gateway.in_flight.max()))
}
