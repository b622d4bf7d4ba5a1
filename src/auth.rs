//! Agent identity: `Authorization: Bearer <key>`, each key belonging to one named agent.
//!
//! Only SHA-256 digests of keys are held (from `--agent NAME=sha256:HEX`, or hashed at start from
//! `--agent NAME=env:VAR`), so a leaked configuration does not leak keys. A presented key is
//! hashed and looked up by digest: the lookup reveals nothing about keys close to it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthConfigError {
    #[error("--agent {0:?}: expected NAME=sha256:HEX (64 hex digits) or NAME=env:VARIABLE")]
    Malformed(String),
    #[error("--agent {name}: environment variable {variable} is not set or empty")]
    MissingVariable { name: String, variable: String },
    #[error("--agent {0}: two agents have the same key")]
    SharedKey(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("this gateway requires an agent key: send Authorization: Bearer <key>")]
    Missing,
    #[error("the agent key is not recognised")]
    Unknown,
    #[error("Authorization must be \"Bearer <key>\"")]
    Malformed,
}

#[derive(Debug, Default)]
pub struct AgentKeys {
    by_digest: HashMap<[u8; 32], Arc<str>>,
    required: bool,
}

impl AgentKeys {
    /// Parses `--agent` specs; `lookup` reads environment variables (injected for tests).
    pub fn from_specs(
        specs: &[String],
        required: bool,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, AuthConfigError> {
        let mut by_digest = HashMap::new();
        for spec in specs {
            let (name, source) = spec
                .split_once('=')
                .filter(|(name, _)| !name.is_empty())
                .ok_or_else(|| AuthConfigError::Malformed(spec.clone()))?;
            let digest = if let Some(hex_digest) = source.strip_prefix("sha256:") {
                let bytes = hex::decode(hex_digest)
                    .map_err(|_| AuthConfigError::Malformed(spec.clone()))?;
                <[u8; 32]>::try_from(bytes).map_err(|_| AuthConfigError::Malformed(spec.clone()))?
            } else if let Some(variable) = source.strip_prefix("env:") {
                let key = lookup(variable).filter(|k| !k.is_empty()).ok_or_else(|| {
                    AuthConfigError::MissingVariable {
                        name: name.to_owned(),
                        variable: variable.to_owned(),
                    }
                })?;
                digest_of(&key)
            } else {
                return Err(AuthConfigError::Malformed(spec.clone()));
            };
            if by_digest.insert(digest, Arc::from(name)).is_some() {
                return Err(AuthConfigError::SharedKey(name.to_owned()));
            }
        }
        Ok(Self {
            by_digest,
            required,
        })
    }

    /// The configured agents' names.
    pub fn names(&self) -> impl Iterator<Item = &Arc<str>> {
        self.by_digest.values()
    }

    pub fn is_required(&self) -> bool {
        self.required
    }

    /// The agent the request comes from: `None` for an anonymous request where that is allowed.
    /// A key that is presented must be known, whether or not keys are required.
    pub fn identify(&self, headers: &HeaderMap) -> Result<Option<Arc<str>>, AuthError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return if self.required {
                Err(AuthError::Missing)
            } else {
                Ok(None)
            };
        };
        let value = value.to_str().map_err(|_| AuthError::Malformed)?;
        let (scheme, key) = value.split_once(' ').ok_or(AuthError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") || key.trim().is_empty() {
            return Err(AuthError::Malformed);
        }
        self.by_digest
            .get(&digest_of(key.trim()))
            .cloned()
            .map(Some)
            .ok_or(AuthError::Unknown)
    }
}

/// The credential of `Authorization: Bearer <credential>`, if the header is there.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthError::Malformed)?;
    let (scheme, credential) = value.split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || credential.trim().is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(Some(credential.trim()))
}

pub fn digest_of(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A fresh random key (for `mcpgate agent-key`).
pub fn new_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!("mcpg_{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn bearer(key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
        );
        headers
    }

    fn keys(required: bool) -> AgentKeys {
        let spec = format!(
            "research-bot=sha256:{}",
            hex::encode(digest_of("k-research"))
        );
        AgentKeys::from_specs(&[spec, "trader=env:TRADER_KEY".into()], required, |v| {
            (v == "TRADER_KEY").then(|| "k-trader".to_owned())
        })
        .unwrap()
    }

    #[test]
    fn identifies_agents_by_key_from_hash_or_environment() {
        let keys = keys(true);
        assert_eq!(
            keys.identify(&bearer("k-research")).unwrap().as_deref(),
            Some("research-bot")
        );
        assert_eq!(
            keys.identify(&bearer("k-trader")).unwrap().as_deref(),
            Some("trader")
        );
    }

    #[test]
    fn unknown_or_malformed_keys_are_refused_even_when_keys_are_optional() {
        let keys = keys(false);
        assert_eq!(keys.identify(&bearer("guess")), Err(AuthError::Unknown));
        let mut basic = HeaderMap::new();
        basic.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic a2V5"),
        );
        assert_eq!(keys.identify(&basic), Err(AuthError::Malformed));
        assert_eq!(keys.identify(&HeaderMap::new()), Ok(None));
    }

    #[test]
    fn a_missing_key_is_refused_when_required() {
        assert_eq!(
            keys(true).identify(&HeaderMap::new()),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn bad_specs_say_what_is_expected() {
        let none = |_: &str| None;
        assert!(matches!(
            AgentKeys::from_specs(&["bot".into()], false, none),
            Err(AuthConfigError::Malformed(_))
        ));
        assert!(matches!(
            AgentKeys::from_specs(&["bot=sha256:abcd".into()], false, none),
            Err(AuthConfigError::Malformed(_))
        ));
        assert!(matches!(
            AgentKeys::from_specs(&["bot=env:NOPE".into()], false, none),
            Err(AuthConfigError::MissingVariable { .. })
        ));
        let twice = |_: &str| Some("same".to_owned());
        assert!(matches!(
            AgentKeys::from_specs(&["a=env:X".into(), "b=env:Y".into()], false, twice),
            Err(AuthConfigError::SharedKey(_))
        ));
    }
}
