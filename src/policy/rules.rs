//! The compiled rules `decide` reads. Every value here has passed loading: a `RateLimit` has a
//! positive max and window, an approval timeout is positive, an argument schema compiled. Fields
//! are private so that nothing outside `compile` can make one that has not.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

/// What the policy does with a tool or method it has no entry for: "deny" or "allow".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    Allow,
    Deny,
}

/// Whose calls share a rate-limit counter: "agent" (the session's, while the agent is unknown),
/// "session" or "global".
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LimitScope {
    #[default]
    Agent,
    Session,
    Global,
}

/// How a human is asked to approve a call: "queue" (the admin queue) or "elicitation" (MCP
/// elicitation/create to the client).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalVia {
    #[default]
    Queue,
    Elicitation,
}

/// One compiled rate limit: at most `max` calls per `window`, counted per `per`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    key: Arc<str>,
    rule: String,
    max: u32,
    window: Duration,
    per: LimitScope,
}

impl RateLimit {
    /// `max` and `window_secs` are at least 1 (the file schema says so; `compile` only calls this
    /// after the schema check). `pointer` is the rule's JSON pointer, which unlike the dotted rule
    /// name cannot be the same for two different rules.
    pub(super) fn new(
        rule: String,
        pointer: &str,
        max: u32,
        window_secs: u32,
        per: LimitScope,
    ) -> Self {
        debug_assert!(max >= 1 && window_secs >= 1);
        // The counter key names everything that shapes the counter, so a reload keeps the counter
        // of a rule that did not change and starts afresh for one that did.
        let key = format!("{pointer}|{max}/{window_secs}s|{}", per.as_str()).into();
        RateLimit {
            key,
            rule,
            max,
            window: Duration::from_secs(window_secs.into()),
            per,
        }
    }

    pub(super) fn shared_key(&self) -> &Arc<str> {
        &self.key
    }

    /// Stable across reloads while the rule, max, window and scope stay the same.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The rule the limit belongs to, as users read it: `tools.get_price`, `rate_limit`.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    pub fn per(&self) -> LimitScope {
        self.per
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (rule, max, window, per) = (&self.rule, self.max, self.window.as_secs(), self.per);
        write!(f, "{rule} {max}/{window}s per {}", per.as_str())
    }
}

impl LimitScope {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitScope::Agent => "agent",
            LimitScope::Session => "session",
            LimitScope::Global => "global",
        }
    }
}

impl ApprovalVia {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalVia::Queue => "queue",
            ApprovalVia::Elicitation => "elicitation",
        }
    }
}

/// The rate limits one call is subject to: the rule's own, then the top-level one (or the agent
/// section's). Two slots, not a Vec, so that a decision does not allocate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits<'p> {
    rule: Option<&'p RateLimit>,
    overall: Option<&'p RateLimit>,
}

impl<'p> Limits<'p> {
    pub(super) fn new(rule: Option<&'p RateLimit>, overall: Option<&'p RateLimit>) -> Self {
        Limits { rule, overall }
    }

    /// The rule's own limit first, then the overall one.
    pub fn iter(&self) -> impl Iterator<Item = &'p RateLimit> {
        self.rule.into_iter().chain(self.overall)
    }

    pub fn is_empty(&self) -> bool {
        self.rule.is_none() && self.overall.is_none()
    }
}

impl fmt::Display for Limits<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no limits");
        }
        f.write_str("limits: ")?;
        for (i, limit) in self.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{limit}")?;
        }
        Ok(())
    }
}

/// A compiled argument schema: the call's `arguments` must satisfy it.
pub(super) struct ArgumentSchema(pub(super) jsonschema::Validator);

/// An argument rule: compiled for deciding, and as written, for showing the agent (`advertise`).
#[derive(Debug)]
pub(super) struct ArgumentRule {
    pub compiled: ArgumentSchema,
    pub source: serde_json::Value,
}

impl From<(ArgumentSchema, serde_json::Value)> for ArgumentRule {
    fn from((compiled, source): (ArgumentSchema, serde_json::Value)) -> Self {
        Self { compiled, source }
    }
}

impl fmt::Debug for ArgumentSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArgumentSchema(..)")
    }
}

/// What a tool rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ToolAction {
    Allow,
    Deny,
    Approval { timeout: Duration, via: ApprovalVia },
}

#[derive(Debug)]
pub(super) struct ToolRule {
    /// `tools.NAME` or `agents.AGENT.tools.NAME`.
    pub rule: String,
    pub action: ToolAction,
    pub reason: Option<String>,
    pub rate_limit: Option<RateLimit>,
    pub arguments: Option<ArgumentRule>,
    pub hide: bool,
    /// The digest of the reviewed definition (top-level rules only).
    pub pin: Option<super::pins::Digest>,
    /// Result rules, the top-level ones included.
    pub results: Option<super::results::ResultRules>,
    /// OAuth scopes a caller's token must grant.
    pub scopes: Vec<String>,
}

#[derive(Debug)]
pub(super) struct MethodRule {
    /// `methods.NAME` or `agents.AGENT.methods.NAME`.
    pub rule: String,
    pub deny: bool,
    pub reason: Option<String>,
    pub rate_limit: Option<RateLimit>,
}
