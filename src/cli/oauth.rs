//! The OAuth 2.1 resource-server flags of `serve` and `demo`.

use std::time::Duration;

use clap::Args;

use crate::oauth::OAuthConfig;

#[derive(Debug, Args)]
pub struct OAuthOptions {
    /// An authorization server whose access tokens are accepted, by its issuer identifier
    /// (repeatable; comma-separated in the environment). Its metadata and keys are discovered
    /// from it. Needs --public-url. With it, every request needs an access token or agent key.
    #[arg(
        long = "oauth-issuer",
        env = "MCPGATE_OAUTH_ISSUER",
        value_delimiter = ',',
        requires = "public_url"
    )]
    pub oauth_issuers: Vec<reqwest::Url>,
    /// The gateway's MCP URL as agents reach it (e.g. https://gw.example/mcp): the resource
    /// identifier of the protected-resource metadata, and the audience tokens must name.
    #[arg(long, env = "MCPGATE_PUBLIC_URL")]
    pub public_url: Option<reqwest::Url>,
    /// A scope every access token must grant (repeatable); a token without it gets 403.
    #[arg(
        long = "oauth-scope",
        env = "MCPGATE_OAUTH_SCOPE",
        value_delimiter = ','
    )]
    pub oauth_scopes: Vec<String>,
    /// The token claim that names the agent (default: client_id, then sub).
    #[arg(long, env = "MCPGATE_OAUTH_AGENT_CLAIM")]
    pub oauth_agent_claim: Option<String>,
    /// Shortest time between two fetches of an issuer's keys caused by tokens naming unknown key ids.
    #[arg(
        long,
        env = "MCPGATE_OAUTH_JWKS_MIN_REFRESH_SECS",
        default_value_t = 10
    )]
    pub oauth_jwks_min_refresh_secs: u64,
}

impl OAuthOptions {
    pub fn config(&self) -> Option<OAuthConfig> {
        if self.oauth_issuers.is_empty() {
            return None;
        }
        Some(OAuthConfig {
            issuers: self.oauth_issuers.clone(),
            public_url: self.public_url.clone()?,
            scopes: self.oauth_scopes.clone(),
            agent_claim: self.oauth_agent_claim.clone(),
            jwks_min_refresh: Duration::from_secs(self.oauth_jwks_min_refresh_secs),
        })
    }
}
