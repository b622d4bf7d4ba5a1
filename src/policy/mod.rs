//! The policy engine: load a policy file, compile it, decide calls.
//!
//! A pure library: no sockets, no clock it is not handed, no global state, and no files but the
//! policy file itself, read in `source` and nowhere else. The server,
//! `mcpgate policy check/explain` and the benchmarks call the same [`CompiledPolicy::decide`].
//! Rate-limit counters live apart, in [`RateLimiter`], so that a reload keeps them.
//! See `README.md` beside this file for the format and the choices behind it.
//!
//! Reading order: `file` (the format) → `load` (bytes → errors or policy) → `compile` (file types →
//! `rules`) → `decide` (call → `Decision`) → `explain`; `rate_limit` is separate state; `source`
//! reads the file.

mod advertise;
mod compile;
mod decide;
mod duplicates;
mod explain;
mod file;
mod lint;
mod load;
pub mod pins;
mod rate_limit;
pub mod results;
mod rules;
mod source;

#[cfg(test)]
mod binance_policy_tests;

use std::collections::HashMap;

pub use decide::{Call, Decision};
pub use file::file_schema;
pub use lint::untyped_argument_keywords;
pub use load::{LoadError, LoadErrors};
pub use rate_limit::{counter_name, LimitExceeded, Permit, RateLimiter, Subject};
pub use rules::{ApprovalVia, DefaultAction, LimitScope, Limits, RateLimit};
pub use source::PolicyFileError;

use foldhash::fast::RandomState;
use rules::{MethodRule, ToolRule};

/// A policy that loaded: every rule is well-formed, every argument schema compiled. Immutable;
/// a reload builds a new one. `Send + Sync`, so one `Arc<CompiledPolicy>` serves every request.
#[derive(Debug)]
pub struct CompiledPolicy {
    default: DefaultAction,
    global: Section,
    agents: HashMap<String, Section, RandomState>,
    /// Sorted, without repeats.
    tool_rule_names: Vec<String>,
    pins: pins::PinMode,
    /// Show the rules in tools/list.
    advertise: bool,
    /// The top-level result rules (a tool rule's own include them).
    results: Option<results::ResultRules>,
}

/// The top level of the file, or one agent's section. For the top level `default` is `None` (the
/// policy's own default is in `CompiledPolicy`).
#[derive(Debug)]
struct Section {
    default: Option<DefaultAction>,
    rate_limit: Option<RateLimit>,
    tools: HashMap<String, ToolRule, RandomState>,
    methods: HashMap<String, MethodRule, RandomState>,
}

impl CompiledPolicy {
    /// Loads a policy file. On failure, every problem found, each with its JSON path.
    pub fn from_json_slice(bytes: &[u8]) -> Result<CompiledPolicy, LoadErrors> {
        load::load(bytes)
    }

    /// The top-level `default`.
    pub fn default_action(&self) -> DefaultAction {
        self.default
    }

    /// The default that applies to `agent`: its section's, if it sets one, else the top-level one.
    pub fn default_for(&self, agent: Option<&str>) -> DefaultAction {
        self.default_in(self.section(agent))
    }

    /// Every tool name that has a rule anywhere (top level or an agent section), sorted, once each.
    pub fn tool_rule_names(&self) -> impl Iterator<Item = &str> {
        self.tool_rule_names.iter().map(String::as_str)
    }

    /// How each approval rule asks a person (one entry per rule, top level and agent sections):
    /// empty when no rule holds calls for approval.
    pub fn approval_routes(&self) -> Vec<ApprovalVia> {
        std::iter::once(&self.global)
            .chain(self.agents.values())
            .flat_map(|section| section.tools.values())
            .filter_map(|rule| match rule.action {
                rules::ToolAction::Approval { via, .. } => Some(via),
                _ => None,
            })
            .collect()
    }

    /// Whether `tool` belongs in `agent`'s tools/list: not if hidden, denied, or denied by default.
    /// Approval tools are listed: the agent may call them and wait.
    pub fn tool_visible(&self, agent: Option<&str>, tool: &str) -> bool {
        let section = self.section(agent);
        match self.tool_rule(section, tool) {
            Some(rule) => !rule.hide && rule.action != rules::ToolAction::Deny,
            None => self.default_in(section) == DefaultAction::Allow,
        }
    }

    /// Whether `tool` belongs in the tools/list of `agent` whose token grants `granted`: visible,
    /// and its rule requires no scope the caller lacks (such a call would only be refused).
    pub fn tool_listed(&self, agent: Option<&str>, tool: &str, granted: Option<&[String]>) -> bool {
        self.tool_visible(agent, tool) && self.missing_scopes(agent, tool, granted).is_empty()
    }

    fn section<'p>(&'p self, agent: Option<&str>) -> Option<&'p Section> {
        agent.and_then(|name| self.agents.get(name))
    }

    fn default_in(&self, section: Option<&Section>) -> DefaultAction {
        section.and_then(|s| s.default).unwrap_or(self.default)
    }

    /// The result rules for `agent`'s calls to `tool`: its rule's (the top-level ones included),
    /// else the top-level ones.
    pub fn result_rules(&self, agent: Option<&str>, tool: &str) -> Option<&results::ResultRules> {
        match self.tool_rule(self.section(agent), tool) {
            Some(rule) => rule.results.as_ref(),
            None => self.results.as_ref(),
        }
    }

    /// The scopes `agent`'s rule for `tool` requires that `granted` lacks (a caller without a
    /// token grants none). Empty when the rule requires none, or there is no rule.
    pub fn missing_scopes<'p>(
        &'p self,
        agent: Option<&str>,
        tool: &str,
        granted: Option<&[String]>,
    ) -> Vec<&'p str> {
        let Some(rule) = self.tool_rule(self.section(agent), tool) else {
            return Vec::new();
        };
        let granted = granted.unwrap_or_default();
        rule.scopes
            .iter()
            .filter(|s| !granted.contains(s))
            .map(String::as_str)
            .collect()
    }

    /// An agent's entry replaces the global one whole; the two are never merged.
    fn tool_rule<'p>(&'p self, section: Option<&'p Section>, tool: &str) -> Option<&'p ToolRule> {
        section
            .and_then(|s| s.tools.get(tool))
            .or_else(|| self.global.tools.get(tool))
    }

    fn method_rule<'p>(
        &'p self,
        section: Option<&'p Section>,
        method: &str,
    ) -> Option<&'p MethodRule> {
        section
            .and_then(|s| s.methods.get(method))
            .or_else(|| self.global.methods.get(method))
    }

    /// The limit on all of a caller's calls together: the agent section's, if it sets one.
    fn overall_limit<'p>(&'p self, section: Option<&'p Section>) -> Option<&'p RateLimit> {
        section
            .and_then(|s| s.rate_limit.as_ref())
            .or(self.global.rate_limit.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn compiled_policy_and_limiter_can_be_shared_between_threads() {
        assert_send_sync::<CompiledPolicy>();
        assert_send_sync::<RateLimiter>();
    }

    #[test]
    fn tool_rule_names_cover_agent_sections_once_each() {
        let policy = CompiledPolicy::from_json_slice(
            br#"{"version":"1","default":"deny",
                 "tools":{"b":{},"a":{}},
                 "agents":{"x":{"tools":{"a":{},"c":{}}}}}"#,
        )
        .unwrap();
        assert_eq!(
            policy.tool_rule_names().collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn tool_visible_hides_hidden_denied_and_default_denied_tools() {
        let policy = CompiledPolicy::from_json_slice(
            br#"{"version":"1","default":"deny",
                 "tools":{"open":{},"secret":{"hide":true},"banned":{"action":"deny"},
                          "asked":{"action":"approval"}},
                 "agents":{"admin":{"default":"allow","tools":{"banned":{}}}}}"#,
        )
        .unwrap();
        assert!(policy.tool_visible(None, "open"));
        assert!(policy.tool_visible(None, "asked"));
        assert!(!policy.tool_visible(None, "secret"));
        assert!(!policy.tool_visible(None, "banned"));
        assert!(!policy.tool_visible(None, "unlisted"));
        assert!(policy.tool_visible(Some("admin"), "banned"));
        assert!(policy.tool_visible(Some("admin"), "unlisted"));
        assert!(!policy.tool_visible(Some("admin"), "secret"));
        assert_eq!(policy.default_action(), DefaultAction::Deny);
        assert_eq!(policy.default_for(Some("admin")), DefaultAction::Allow);
    }

    #[test]
    fn tool_listed_hides_tools_whose_scopes_the_caller_lacks() {
        let policy = CompiledPolicy::from_json_slice(
            br#"{"version":"1","default":"deny",
                 "tools":{"open":{},"orders":{"scopes":["orders"]},"secret":{"hide":true}}}"#,
        )
        .unwrap();
        let wide = ["orders".to_owned(), "mcp".to_owned()];
        let narrow = ["mcp".to_owned()];
        assert!(policy.tool_listed(None, "orders", Some(&wide)));
        assert!(!policy.tool_listed(None, "orders", Some(&narrow)));
        assert!(
            !policy.tool_listed(None, "orders", None),
            "no token grants no scope"
        );
        assert!(policy.tool_listed(None, "open", None));
        assert!(!policy.tool_listed(None, "secret", Some(&wide)));
    }
}
