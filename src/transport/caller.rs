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
use crate::oauth::BearerError;
use crate::session::Session;

/// Who is calling, and the OAuth scopes their token grants (`None` for keys and anonymous callers).
pub struct Caller {
    pub agent: Option<Arc<str>>,
    pub scopes: Option<Arc<[String]>>,
}

/// The agent presenting the request's key or access token, and the token's scopes. A refused
/// credential is audited and logged by the caller (`audit_refusal`), never the credential itself.
///
/// With OAuth on, a credential is required: a JWT is checked as an access token, anything else
/// as an agent key, and every refusal carries the challenge that names the metadata document.
/// Every route identifies its caller here, so the scopes are at hand wherever a session is used.
pub async fn identify_caller(
    gateway: &Gateway,
    headers: &HeaderMap,
) -> Result<Caller, GatewayError> {
    let Some(oauth) = &gateway.oauth else {
        return Ok(Caller {
            agent: gateway.agents.identify(headers)?,
            scopes: None,
        });
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
            Ok(identity) => Ok(Caller {
                agent: Some(identity.agent),
                scopes: Some(identity.scopes.into()),
            }),
            Err(err) => Err(refuse(err)),
        };
    }
    match gateway.agents.identify(headers) {
        Ok(agent @ Some(_)) => Ok(Caller {
            agent,
            scopes: None,
        }),
        Ok(None) => Err(refuse(BearerError::Missing)),
        Err(err) => Err(refuse(BearerError::Invalid(err.to_string()))),
    }
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

/// A session opened with a token is used only with tokens that grant at least its scopes: the
/// rules judged it by them, so a narrower token must not ride on a wider one's session.
pub fn check_session_scopes(
    gateway: &Gateway,
    session: &Session,
    caller: &Caller,
) -> Result<(), GatewayError> {
    check_scopes(gateway, session.scopes.as_deref(), caller)
}

/// The same for scopes kept elsewhere than in a session (a legacy stream's, before initialize):
/// `caller` must grant every one of `needed`, or it is 403 `insufficient_scope`.
pub fn check_scopes(
    gateway: &Gateway,
    needed: Option<&[String]>,
    caller: &Caller,
) -> Result<(), GatewayError> {
    let (Some(oauth), Some(needed)) = (&gateway.oauth, needed) else {
        return Ok(());
    };
    let granted = caller.scopes.as_deref().unwrap_or_default();
    let missing: Vec<String> = needed
        .iter()
        .filter(|s| !granted.contains(s))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let error = BearerError::InsufficientScope(missing);
    Err(GatewayError::Bearer {
        challenge: oauth.challenge(&error),
        error,
    })
}

/// Counts the request against its agent, or its session when the agent is anonymous.
pub fn admit<'g>(gateway: &'g Gateway, session: &Session) -> Result<Admitted<'g>, GatewayError> {
    let key = session.agent.as_ref().unwrap_or(&session.id);
    gateway
        .in_flight
        .admit(key)
        .ok_or(GatewayError::TooManyInFlight(gateway.in_flight.max()))
}
