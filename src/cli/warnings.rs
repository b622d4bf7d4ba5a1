//! What an operator should hear at start: settings that work, but not as they probably meant.

use crate::config::GatewayConfig;
use crate::policy::{ApprovalVia, CompiledPolicy};

/// Each warning as one sentence that says what to change.
pub fn at_start(config: &GatewayConfig, policy: &CompiledPolicy) -> Vec<String> {
    let mut warnings = Vec::new();
    if !config.listen.ip().is_loopback() && !config.require_auth {
        warnings.push(format!(
            "listening on {} beyond loopback without --require-auth: anyone who reaches it can \
             call tools anonymously; give agents keys (--agent) and add --require-auth",
            config.listen
        ));
    }
    let routes = policy.approval_routes();
    let approvals = &config.approvals;
    let decidable = approvals.admin_token.is_some()
        || approvals.webhook.is_some()
        || routes.contains(&ApprovalVia::Elicitation);
    if !routes.is_empty() && !decidable {
        warnings.push(format!(
            "the policy has {} approval rule(s) but nobody can decide them: no --admin-token, no \
             --approval-webhook and no \"via\": \"elicitation\" rule; held calls will wait and \
             then be told to retry",
            routes.len()
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApprovalConfig, Limits};

    fn config(listen: &str, require_auth: bool, admin_token: Option<&str>) -> GatewayConfig {
        GatewayConfig {
            listen: listen.parse().unwrap(),
            upstream: "http://127.0.0.1:9000/mcp".parse().unwrap(),
            policy: "policy.json".into(),
            allowed_origins: Vec::new(),
            audit: None,
            audit_arguments: false,
            audit_fsync: crate::audit::Fsync::Never,
            agents: Vec::new(),
            require_auth,
            upstream_access: Default::default(),
            upstream_command: None,
            approvals: ApprovalConfig {
                admin_token: admin_token.map(str::to_owned),
                ..ApprovalConfig::default()
            },
            limits: Limits::default(),
            workers: std::num::NonZeroUsize::MIN,
            metrics_listen: None,
            replicas: Default::default(),
            oauth: None,
        }
    }

    fn policy(json: &str) -> CompiledPolicy {
        CompiledPolicy::from_json_slice(json.as_bytes()).unwrap()
    }

    const APPROVAL: &str =
        r#"{"version": "1", "default": "deny", "tools": {"t": {"action": "approval"}}}"#;
    const ELICITED: &str = r#"{"version": "1", "default": "deny", "tools": {"t": {"action": "approval", "via": "elicitation"}}}"#;
    const PLAIN: &str = r#"{"version": "1", "default": "deny", "tools": {"t": {}}}"#;

    #[test]
    fn warns_about_anonymous_access_beyond_loopback() {
        let open = at_start(&config("0.0.0.0:8080", false, None), &policy(PLAIN));
        assert_eq!(open.len(), 1);
        assert!(open[0].contains("--require-auth"), "{open:?}");
        assert!(at_start(&config("0.0.0.0:8080", true, None), &policy(PLAIN)).is_empty());
        assert!(at_start(&config("127.0.0.1:8080", false, None), &policy(PLAIN)).is_empty());
        assert!(at_start(&config("[::1]:8080", false, None), &policy(PLAIN)).is_empty());
    }

    #[test]
    fn warns_about_approval_rules_nobody_can_decide() {
        let stuck = at_start(&config("127.0.0.1:8080", false, None), &policy(APPROVAL));
        assert_eq!(stuck.len(), 1);
        assert!(stuck[0].contains("nobody can decide"), "{stuck:?}");
        let with_token = config("127.0.0.1:8080", false, Some("t"));
        assert!(at_start(&with_token, &policy(APPROVAL)).is_empty());
        let elicited = config("127.0.0.1:8080", false, None);
        assert!(at_start(&elicited, &policy(ELICITED)).is_empty());
    }
}
