//! RFC 9728 protected-resource metadata: what a client reads after a 401 to learn which
//! authorization server issues tokens for this gateway. Served at
//! `/.well-known/oauth-protected-resource` and at its path form for the resource's path
//! (`/.well-known/oauth-protected-resource/mcp`, RFC 9728 §3.1), both with the same document.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::ResourceServer;

pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// Where the metadata of `resource` lives: the well-known prefix inserted before its path.
pub fn document_url(resource: &reqwest::Url) -> String {
    let mut url = resource.clone();
    let path = resource.path().trim_end_matches('/');
    url.set_path(&format!("{WELL_KNOWN}{path}"));
    url.set_query(None);
    url.to_string()
}

pub fn document(server: &ResourceServer) -> Value {
    let config = server.config();
    let issuers: Vec<String> = config
        .issuers
        .iter()
        .map(|u| u.as_str().trim_end_matches('/').to_owned())
        .collect();
    let mut document = json!({
        "resource": config.public_url.as_str(),
        "authorization_servers": issuers,
        "bearer_methods_supported": ["header"],
        "resource_name": "mcpgate",
    });
    if !config.scopes.is_empty() {
        document["scopes_supported"] = json!(config.scopes);
    }
    document
}

/// The metadata routes, both paths.
pub fn router(server: Arc<ResourceServer>) -> Router {
    let path = server
        .config()
        .public_url
        .path()
        .trim_end_matches('/')
        .to_owned();
    let serve =
        get(|State(server): State<Arc<ResourceServer>>| async move { Json(document(&server)) });
    let mut router = Router::new().route(WELL_KNOWN, serve.clone());
    if !path.is_empty() {
        router = router.route(&format!("{WELL_KNOWN}{path}"), serve);
    }
    router.with_state(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lives_under_the_resource_path() {
        let url = |s: &str| document_url(&s.parse().unwrap());
        assert_eq!(
            url("https://gw.example/mcp"),
            "https://gw.example/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            url("https://gw.example/"),
            "https://gw.example/.well-known/oauth-protected-resource"
        );
    }
}
