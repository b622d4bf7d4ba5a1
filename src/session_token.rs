//! Sealed session ids: the `Mcp-Session-Id` the gateway hands out carries the session's state,
//! encrypted and authenticated (XChaCha20-Poly1305, a random 192-bit nonce per token), so any
//! replica holding the key resumes the session without asking the others.
//!
//! A token is `base64url(nonce || ciphertext)`. What is sealed: a random id (the session's name
//! in audit records, approvals and limits), the agent it belongs to, the upstream's session id,
//! the negotiated revision, the client's elicitation capability, its address, whether the
//! upstream speaks 2026-07-28 (the gateway then opened the session itself), the OAuth scopes
//! of the token that opened it, and an expiry.
//! A token that does not open under the current or the previous key, or has expired, is no
//! session at all (404): tampering, truncation and forgery look the same.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Bound into every token: a token of another format version or purpose does not open.
const AAD: &[u8] = b"mcpgate session v1";
const NONCE_BYTES: usize = 24;
/// Longer tokens are not decoded at all (`SessionKeys::open`).
const MAX_TOKEN_CHARS: usize = 4096;
/// The most an access token's scopes may take sealed (each one's length and 3 bytes of JSON):
/// a token granting more is refused at the edge (`oauth::ResourceServer::verify`), since its
/// session would not fit in a token that opens. Base64 of nonce, tag and the other fields
/// leaves about 3,000 bytes of plaintext under [`MAX_TOKEN_CHARS`]; this keeps a third of it
/// for the agent's name and the upstream's session id, and is some 90 scopes of 20 characters.
pub const MAX_SEALED_SCOPE_BYTES: usize = 2048;

/// What `scopes` take sealed in a token.
pub fn sealed_scope_bytes(scopes: &[String]) -> usize {
    scopes.iter().map(|s| s.len() + 3).sum()
}

/// What a session token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSession {
    /// 128 random bits: each session's token is its own.
    #[serde(rename = "i")]
    pub id: String,
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub upstream_id: Option<String>,
    #[serde(rename = "v")]
    pub version: String,
    #[serde(rename = "e", default)]
    pub elicits: bool,
    #[serde(rename = "ip", default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// The upstream speaks MCP 2026-07-28: the gateway opened this session itself.
    #[serde(rename = "m", default, skip_serializing_if = "std::ops::Not::not")]
    pub modern_upstream: bool,
    /// The scopes of the access token that opened the session; absent for keys and anonymous
    /// callers, and in tokens sealed before scopes were, which therefore resume granting none:
    /// rules requiring scopes refuse them (fail closed) rather than the token being refused.
    /// A list rather than OAuth's space-separated string: an `scp` entry may hold a space, and
    /// splitting it on resume would grant scopes the token never had.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Unix seconds after which the token opens no session.
    #[serde(rename = "x")]
    pub expires: u64,
}

impl SealedSession {
    pub fn expired(&self, now: SystemTime) -> bool {
        unix_secs(now) >= self.expires
    }
}

pub fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// A key given on the command line that is not 32 bytes of base64.
#[derive(Debug, thiserror::Error)]
#[error("{flag} must be 32 bytes in base64 (make one with `mcpgate session-key`): {reason}")]
pub struct BadKey {
    pub flag: &'static str,
    pub reason: String,
}

/// The key new tokens are sealed with, and the previous one still accepted (rotation).
#[derive(Clone)]
pub struct SessionKeys {
    current: XChaCha20Poly1305,
    previous: Option<XChaCha20Poly1305>,
    /// Whether the key was given (several replicas can share it) or made at start.
    pub shared: bool,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("shared", &self.shared)
            .field("previous", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// A key made at start: sessions are good on this process only (one replica, as before).
    pub fn random() -> Self {
        Self {
            current: cipher(&new_key_bytes()),
            previous: None,
            shared: false,
        }
    }

    /// `--session-key` and `--session-key-previous`, as given (base64 of 32 bytes).
    pub fn from_base64(current: &str, previous: Option<&str>) -> Result<Self, BadKey> {
        Ok(Self {
            current: cipher(&decode_key(current, "--session-key")?),
            previous: previous
                .map(|p| decode_key(p, "--session-key-previous").map(|k| cipher(&k)))
                .transpose()?,
            shared: true,
        })
    }

    pub fn seal(&self, session: &SealedSession) -> String {
        let plain = serde_json::to_vec(session).expect("a sealed session serialises");
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .current
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: AAD,
                },
            )
            .expect("XChaCha20-Poly1305 seals any message this size");
        let mut token = Vec::with_capacity(NONCE_BYTES + sealed.len());
        token.extend_from_slice(&nonce);
        token.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The session a token carries, if it opens under either key (expiry is the caller's).
    pub fn open(&self, token: &str) -> Option<SealedSession> {
        // Far longer than any token the gateway makes: not worth decoding.
        if token.len() > MAX_TOKEN_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() <= NONCE_BYTES {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce = XNonce::try_from(nonce).ok()?;
        let payload = || Payload {
            msg: sealed,
            aad: AAD,
        };
        let plain = self
            .current
            .decrypt(&nonce, payload())
            .or_else(|_| match &self.previous {
                Some(previous) => previous.decrypt(&nonce, payload()),
                None => Err(chacha20poly1305::aead::Error),
            })
            .ok()?;
        serde_json::from_slice(&plain).ok()
    }
}

/// A fresh key for `--session-key`, base64 (`mcpgate session-key`).
pub fn new_key() -> String {
    STANDARD.encode(new_key_bytes())
}

fn new_key_bytes() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    key
}

fn cipher(key: &[u8; 32]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new_from_slice(key).expect("32 bytes is the key's size")
}

fn decode_key(text: &str, flag: &'static str) -> Result<[u8; 32], BadKey> {
    let bytes = STANDARD
        .decode(text.trim())
        .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim()))
        .map_err(|err| BadKey {
            flag,
            reason: err.to_string(),
        })?;
    bytes.try_into().map_err(|bytes: Vec<u8>| BadKey {
        flag,
        reason: format!("it is {} bytes", bytes.len()),
    })
}

/// How long a token is good for, from when it is sealed.
pub fn expiry(now: SystemTime, max_age: Duration) -> u64 {
    unix_secs(now).saturating_add(max_age.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> SealedSession {
        SealedSession {
            id: "0".repeat(32),
            agent: Some("bot".into()),
            upstream_id: Some("up-1".into()),
            version: "2025-06-18".into(),
            elicits: true,
            address: None,
            modern_upstream: false,
            scopes: Some(vec!["mcp".into(), "orders".into()]),
            expires: u64::MAX,
        }
    }

    #[test]
    fn a_sealed_session_opens_as_it_was() {
        let keys = SessionKeys::random();
        let token = keys.seal(&session());
        assert_eq!(keys.open(&token), Some(session()));
        assert_ne!(token, keys.seal(&session()), "each token has its own nonce");
    }

    #[test]
    fn tampered_truncated_and_foreign_tokens_do_not_open() {
        let keys = SessionKeys::random();
        let token = keys.seal(&session());
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(keys.open(&URL_SAFE_NO_PAD.encode(&bytes)), None);
        assert_eq!(keys.open(&token[..token.len() - 4]), None);
        assert_eq!(SessionKeys::random().open(&token), None);
        assert_eq!(keys.open("not base64 at all!"), None);
    }

    #[test]
    fn tokens_sealed_with_the_previous_key_still_open() {
        let old = new_key();
        let new = new_key();
        let before = SessionKeys::from_base64(&old, None).unwrap();
        let token = before.seal(&session());
        let rotated = SessionKeys::from_base64(&new, Some(&old)).unwrap();
        assert_eq!(rotated.open(&token), Some(session()));
        let dropped = SessionKeys::from_base64(&new, None).unwrap();
        assert_eq!(dropped.open(&token), None);
    }

    /// A token sealed before scopes were (this plaintext is what that version wrote) still
    /// opens, granting none: scope rules refuse its calls rather than the session vanishing.
    #[test]
    fn a_token_sealed_without_scopes_opens_granting_none() {
        let keys = SessionKeys::random();
        let before = br#"{"i":"00","a":"bot","v":"2025-06-18","e":true,"x":18446744073709551615}"#;
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = keys
            .current
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: before,
                    aad: AAD,
                },
            )
            .unwrap();
        let token = URL_SAFE_NO_PAD.encode([&nonce[..], &sealed].concat());
        let opened = keys.open(&token).expect("an earlier token opens");
        assert_eq!(opened.agent.as_deref(), Some("bot"));
        assert_eq!(opened.scopes, None);
    }

    /// The most scopes an access token may grant still make a token that opens, with the
    /// longest agent name and upstream session id one is likely to meet.
    #[test]
    fn a_session_with_the_most_scopes_allowed_fits_in_a_token_that_opens() {
        let keys = SessionKeys::random();
        let scope = "s".repeat(17);
        let scopes = vec![scope; MAX_SEALED_SCOPE_BYTES / 20];
        assert!(sealed_scope_bytes(&scopes) <= MAX_SEALED_SCOPE_BYTES);
        let session = SealedSession {
            agent: Some("a".repeat(200)),
            upstream_id: Some("u".repeat(200)),
            address: Some("2001:db8::1".parse().unwrap()),
            scopes: Some(scopes),
            ..session()
        };
        let token = keys.seal(&session);
        assert_eq!(keys.open(&token), Some(session), "{} chars", token.len());
    }

    #[test]
    fn keys_must_be_32_bytes() {
        assert!(SessionKeys::from_base64("c2hvcnQ=", None).is_err());
        assert!(SessionKeys::from_base64(&new_key(), Some("nope")).is_err());
    }
}
