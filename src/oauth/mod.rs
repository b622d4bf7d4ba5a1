//! OAuth 2.1 resource server (MCP authorization, 2025-06-18): agents present access tokens that
//! an authorization server issued for this gateway, instead of (or beside) static keys.
//!
//! - The gateway publishes RFC 9728 protected-resource metadata (`metadata.rs`) and answers a
//!   request without a valid token 401 with `WWW-Authenticate: Bearer resource_metadata="…"`,
//!   which is how a client finds the authorization server.
//! - A token is a JWT signed with an asymmetric key of one of the configured issuers (`keys.rs`:
//!   metadata and JWKS discovered, cached, fetched again when a token names an unknown `kid`).
//!   Symmetric algorithms are refused outright: the verifying key is public, so an `HS256` token
//!   "signed" with it would prove nothing (the classic algorithm-confusion attack).
//! - `iss` must be the issuer whose key verified it, `aud` the gateway's resource id
//!   (`--public-url`, RFC 8707), `exp`/`nbf` hold within [`LEEWAY`]; every `--oauth-scope` must be
//!   granted, or the answer is 403 `insufficient_scope`.
//! - The agent is named by a claim (`--oauth-agent-claim`, default `client_id` then `sub`), so
//!   per-agent policy sections, limits, audit and session binding treat it like a keyed agent.
//!
//! The token is read here and nowhere else: the upstream client builds its own requests, so the
//! agent's `Authorization` never reaches the upstream (no token passthrough, as the spec requires).

mod keys;
pub mod metadata;

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

pub use keys::Issuers;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(30);

/// The only algorithms a token may be signed with: public-key signatures.
const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// Issuer identifiers (`--oauth-issuer`), as their metadata's `issuer` states them.
    pub issuers: Vec<reqwest::Url>,
    /// The resource identifier (`--public-url`): the audience tokens must name.
    pub public_url: reqwest::Url,
    /// Scopes every token must grant (`--oauth-scope`).
    pub scopes: Vec<String>,
    /// The claim that names the agent; `None`: `client_id`, then `sub`.
    pub agent_claim: Option<String>,
    /// The shortest time between two JWKS fetches for one issuer caused by unknown `kid`s, so
    /// that tokens with made-up key ids cannot make the gateway hammer the provider.
    pub jwks_min_refresh: Duration,
}

/// Why a bearer token was not accepted. 401 for all but `InsufficientScope` (403).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BearerError {
    #[error("this gateway requires an access token: send Authorization: Bearer <token>")]
    Missing,
    #[error("the access token is not valid: {0}")]
    Invalid(String),
    #[error("the access token lacks the scopes {}", .0.join(" "))]
    InsufficientScope(Vec<String>),
}

/// What a valid token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    pub agent: Arc<str>,
    pub scopes: Vec<String>,
}

pub struct ResourceServer {
    config: OAuthConfig,
    issuers: Issuers,
    challenge: String,
}

impl ResourceServer {
    pub fn new(config: OAuthConfig, http: reqwest::Client) -> Self {
        let issuers = Issuers::new(&config.issuers, http, config.jwks_min_refresh);
        let challenge = format!(
            "Bearer resource_metadata=\"{}\"",
            metadata::document_url(&config.public_url)
        );
        Self {
            config,
            issuers,
            challenge,
        }
    }

    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// The `WWW-Authenticate` value for a refusal (RFC 6750 §3, RFC 9728 §5.1).
    pub fn challenge(&self, error: &BearerError) -> String {
        match error {
            BearerError::Missing => self.challenge.clone(),
            BearerError::Invalid(_) => format!("{}, error=\"invalid_token\"", self.challenge),
            BearerError::InsufficientScope(_) => format!(
                "{}, error=\"insufficient_scope\", scope=\"{}\"",
                self.challenge,
                self.config.scopes.join(" ")
            ),
        }
    }

    /// Checks a JWT access token and names its bearer.
    pub async fn verify(&self, token: &str) -> Result<TokenIdentity, BearerError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| BearerError::Invalid(format!("unreadable header: {e}")))?;
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(BearerError::Invalid(format!(
                "algorithm {:?} is not accepted; tokens must be signed with a public-key algorithm",
                header.alg
            )));
        }
        let (issuer, key) = self
            .issuers
            .key_for(header.kid.as_deref(), header.alg)
            .await
            .map_err(BearerError::Invalid)?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[issuer.as_str()]);
        validation.set_audience(&[self.config.public_url.as_str()]);
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| BearerError::Invalid(e.to_string()))?
            .claims;
        let identity = self.identity(&claims)?;
        // A session carries its scopes in its sealed id, which must stay short enough to open.
        let sealed = crate::session_token::sealed_scope_bytes(&identity.scopes);
        if sealed > crate::session_token::MAX_SEALED_SCOPE_BYTES {
            return Err(BearerError::Invalid(format!(
                "it grants {sealed} bytes of scopes; a session carries at most {}",
                crate::session_token::MAX_SEALED_SCOPE_BYTES
            )));
        }
        let missing: Vec<String> = self
            .config
            .scopes
            .iter()
            .filter(|s| !identity.scopes.contains(s))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(BearerError::InsufficientScope(missing));
        }
        Ok(identity)
    }

    fn identity(&self, claims: &Value) -> Result<TokenIdentity, BearerError> {
        let name = |claim: &str| {
            claims
                .get(claim)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let agent = match &self.config.agent_claim {
            Some(claim) => name(claim),
            None => name("client_id").or_else(|| name("sub")),
        }
        .ok_or_else(|| {
            BearerError::Invalid(format!(
                "no {} claim names the agent",
                self.config
                    .agent_claim
                    .as_deref()
                    .unwrap_or("client_id or sub")
            ))
        })?;
        Ok(TokenIdentity {
            agent: agent.into(),
            scopes: scopes(claims),
        })
    }
}

/// `scope` (RFC 9068: space-separated) or `scp` (a list, as some providers send it), sorted
/// and without repeats: tokens granting the same scopes in another order are the same caller
/// to the 2026-07-28 bridge (`session::BridgeCaller`), and seal the same.
fn scopes(claims: &Value) -> Vec<String> {
    let mut scopes: Vec<String> = match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    scopes.sort_unstable();
    scopes.dedup();
    scopes
}

/// Whether a bearer credential reads as a JWT (three dot-separated parts) rather than an agent key.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_come_from_scope_or_scp() {
        assert_eq!(scopes(&json!({"scope": "a  b"})), ["a", "b"]);
        assert_eq!(scopes(&json!({"scope": "b a b"})), ["a", "b"]);
        assert_eq!(scopes(&json!({"scp": ["x"]})), ["x"]);
        assert!(scopes(&json!({})).is_empty());
    }

    #[test]
    fn only_public_key_algorithms_are_accepted() {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            assert!(!ASYMMETRIC.contains(&alg));
        }
    }
}
