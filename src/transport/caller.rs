//! Who is calling: the agent (from its key), its session (which must be its own), and whether it
//! may have one more request in flight.

use std::sync::Arc;

use axum::http::{HeaderMap, Method};

use super::error::GatewayError;
use super::headers;
use crate::admission::Admitted;
use crate::audit::AuditDecision;
use crate::gateway::Gateway;
use crate::oauth::BearerError;
use crate::session::Session;

/// The agent presenting the request's key or access token. A refused credential is audited and
/// logged by the caller (`audit_refusal`), never the credential itself.
///
/// With OAuth on, a credential is required: a JWT is checked as an access token, anything else
/// as an agent key, and every refusal carries the challenge that names the metadata document.
pub async fn identify(
    gateway: &Gateway,
    headers: &HeaderMap,
) -> Result<Option<Arc<str>>, GatewayError> {
    let Some(oauth) = &gateway.oauth else {
        return Ok(gateway.agents.identify(headers)?);
    };
    let refuse = |error: BearerError| GatewayError::Bearer {
        challenge: oauth.challenge(&error),
        error,
    };
    let token = match crate::auth::bearer(headers) {
        Ok(Some(token)) => token,
        Ok(None) => return Err(refuse(BearerError::Missing)),
        Err(err) => return Err(refuse(BearerError::Invalid(err.to_string()))),
    };
    if crate::oauth::looks_like_jwt(token) {
        return match oauth.verify(token).await {
            Ok(identity) => Ok(Some(identity.agent)),
            Err(err) => Err(refuse(err)),
        };
    }
    match gateway.agents.identify(headers) {
        Ok(agent @ Some(_)) => Ok(agent),
        Ok(None) => Err(refuse(BearerError::Missing)),
        Err(err) => Err(refuse(BearerError::Invalid(err.to_string()))),
    }
}

/// The caller's live session. A session belongs to the agent that opened it: any other caller
/// presenting its id (a stolen or guessed id) is told it does not exist.
pub fn session_of(
    gateway: &Gateway,
    headers: &HeaderMap,
    agent: Option<&Arc<str>>,
) -> Result<Arc<Session>, GatewayError> {
    let id = headers::session_id(headers)?.ok_or(GatewayError::MissingSession)?;
    let session = gateway
        .sessions
        .get(id)
        .ok_or(GatewayError::UnknownSession)?;
    if session.agent.as_ref() != agent {
        return Err(GatewayError::UnknownSession);
    }
    Ok(session)
}

/// A refusal at the edge that says something about who is probing (401: a key no agent has;
/// 404: a session that is not the caller's) is audited, within the gateway's budget for them.
/// Keys are never written; the session id presented is.
pub fn audit_refusal(gateway: &Gateway, headers: &HeaderMap, method: &Method, err: &GatewayError) {
    let decision = match err {
        GatewayError::Unauthorized(_) | GatewayError::Bearer { .. } => AuditDecision::Unauthorized,
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
