//! Each issuer's signing keys: its metadata (RFC 8414 / OpenID Connect Discovery) read once for
//! the `jwks_uri`, the JWKS cached, and fetched again when a token names a key id no cached set
//! has (key rotation), at most once per `min_refresh` per issuer.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use tokio::sync::Mutex;

pub struct Issuers {
    issuers: Vec<Issuer>,
    http: reqwest::Client,
    min_refresh: Duration,
}

struct Issuer {
    id: reqwest::Url,
    state: Mutex<IssuerState>,
}

#[derive(Default)]
struct IssuerState {
    jwks_uri: Option<reqwest::Url>,
    keys: Vec<Jwk>,
    fetched: Option<Instant>,
}

impl Issuers {
    pub fn new(ids: &[reqwest::Url], http: reqwest::Client, min_refresh: Duration) -> Self {
        Self {
            issuers: ids
                .iter()
                .map(|id| Issuer {
                    id: id.clone(),
                    state: Mutex::default(),
                })
                .collect(),
            http,
            min_refresh,
        }
    }

    /// The issuer and key that must have signed a token with this `kid` and `alg`. A key id no
    /// cached set has makes each issuer's set be fetched again (rotation), within the budget.
    pub async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<(String, DecodingKey), String> {
        for refresh in [false, true] {
            for issuer in &self.issuers {
                let mut state = issuer.state.lock().await;
                let stale = state.fetched.is_none()
                    || (refresh
                        && state
                            .fetched
                            .is_some_and(|t| t.elapsed() >= self.min_refresh));
                if stale {
                    if let Err(err) = self.fetch(issuer, &mut state).await {
                        tracing::warn!(issuer = %issuer.id, error = %err, "could not fetch the issuer's keys");
                        continue;
                    }
                }
                if let Some(jwk) = pick(&state.keys, kid) {
                    return decoding_key(jwk, alg).map(|key| (issuer_name(&issuer.id), key));
                }
            }
        }
        Err(match kid {
            Some(kid) => format!("no configured issuer has a key with id {kid:?}"),
            None => "the token names no key id (kid) and no issuer has exactly one key".into(),
        })
    }

    async fn fetch(&self, issuer: &Issuer, state: &mut IssuerState) -> Result<(), String> {
        // Counted as a fetch even when it fails: a provider that is down is not asked again at
        // every request.
        state.fetched = Some(Instant::now());
        let jwks_uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover(&issuer.id).await?;
                state.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let set: JwkSet = self.get_json(jwks_uri).await?;
        state.keys = set.keys;
        Ok(())
    }

    /// RFC 8414 §3 (path inserted after the well-known prefix), then OpenID Connect Discovery
    /// (path appended). The document must name this issuer exactly (RFC 8414 §3.3).
    async fn discover(&self, issuer: &reqwest::Url) -> Result<reqwest::Url, String> {
        let path = issuer.path().trim_end_matches('/');
        let mut tried = Vec::new();
        for well_known in [
            format!("/.well-known/oauth-authorization-server{path}"),
            format!("{path}/.well-known/openid-configuration"),
        ] {
            let mut url = issuer.clone();
            url.set_path(&well_known);
            let document: Value = match self.get_json(url.clone()).await {
                Ok(document) => document,
                Err(err) => {
                    tried.push(err);
                    continue;
                }
            };
            let named = document.get("issuer").and_then(Value::as_str);
            if named != Some(issuer_name(issuer).as_str()) {
                return Err(format!(
                    "{url} names issuer {named:?}, not {:?}",
                    issuer_name(issuer)
                ));
            }
            let jwks = document
                .get("jwks_uri")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{url} has no jwks_uri"))?;
            return jwks.parse().map_err(|e| format!("{url}: jwks_uri: {e}"));
        }
        Err(tried.join("; "))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: reqwest::Url,
    ) -> Result<T, String> {
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: {}", response.status()));
        }
        response.json().await.map_err(|e| format!("{url}: {e}"))
    }
}

/// The issuer as tokens spell it: `Url` adds a `/` to a bare origin that issuers usually omit.
fn issuer_name(url: &reqwest::Url) -> String {
    let text = url.as_str();
    if url.path() == "/" {
        text.trim_end_matches('/').to_owned()
    } else {
        text.to_owned()
    }
}

fn pick<'k>(keys: &'k [Jwk], kid: Option<&str>) -> Option<&'k Jwk> {
    match kid {
        Some(kid) => keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid)),
        None => match keys {
            [only] => Some(only),
            _ => None,
        },
    }
}

/// The key, if it may verify `alg`: a JWK that states its algorithm must state this one.
fn decoding_key(jwk: &Jwk, alg: Algorithm) -> Result<DecodingKey, String> {
    if let Some(stated) = jwk.common.key_algorithm {
        let stated = format!("{stated:?}");
        if stated != format!("{alg:?}") {
            return Err(format!("the key is for {stated}, the token says {alg:?}"));
        }
    }
    DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable key: {e}"))
}
