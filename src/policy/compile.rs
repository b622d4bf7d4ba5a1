//! File types → compiled rules. Runs after the file passed its schema, so only the checks a schema
//! cannot express well live here; each pushes a `LoadError` and loading goes on, so that one run
//! reports every mistake.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use foldhash::fast::RandomState;

use super::decide::is_lifecycle;
use super::file::PinModeFile;
use super::file::{
    AgentSectionFile, MethodActionFile, MethodRuleFile, PolicyFile, RateLimitFile, ToolActionFile,
    ToolRuleFile, Version,
};
use super::load::LoadError;
use super::pins::{Digest, PinMode};
use super::results::ResultRules;
use super::rules::{ArgumentSchema, MethodRule, RateLimit, ToolAction, ToolRule};
use super::{CompiledPolicy, Section};
use crate::protocol::method;

/// How long a pending approval waits when the rule does not say.
const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(300);

/// Where something sits in the file: its rule name as users read it (`agents.bot.tools.x`) and its
/// JSON pointer (`/agents/bot/tools/x`), which error paths and counter keys use.
pub(super) struct Place {
    rule: String,
    pointer: String,
}

impl Place {
    pub(super) fn root() -> Self {
        Place {
            rule: String::new(),
            pointer: String::new(),
        }
    }

    pub(super) fn agent(&self, name: &str) -> Self {
        self.child("agents", name)
    }

    /// `kind` is "tools", "methods" or "agents"; `name` is the user's key, kept verbatim.
    pub(super) fn child(&self, kind: &str, name: &str) -> Self {
        let dot = if self.rule.is_empty() { "" } else { "." };
        Place {
            rule: format!("{}{dot}{kind}.{name}", self.rule),
            pointer: format!("{}/{kind}/{}", self.pointer, escape(name)),
        }
    }

    pub(super) fn pointer(&self) -> &str {
        &self.pointer
    }

    /// A field of this place: `rate_limit`, `agents.bot.rate_limit`.
    fn field(&self, field: &str) -> Self {
        let dot = if self.rule.is_empty() { "" } else { "." };
        Place {
            rule: format!("{}{dot}{field}", self.rule),
            pointer: format!("{}/{field}", self.pointer),
        }
    }
}

/// RFC 6901: `~` → `~0`, `/` → `~1` (method names such as resources/read contain a slash).
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

pub(super) fn compile(file: PolicyFile) -> Result<CompiledPolicy, Vec<LoadError>> {
    // The only format so far; a version "2" would branch here.
    let Version::V1 = file.version;
    let mut errors = Vec::new();
    let root = Place::root();
    let tool_rule_names: BTreeSet<String> = file
        .tools
        .keys()
        .chain(file.agents.values().flat_map(|a| a.tools.keys()))
        .cloned()
        .collect();
    let results = file.results.and_then(|results| {
        ResultRules::compile(results, "")
            .map_err(|more| errors.extend(more))
            .ok()
    });
    let mut global = section(
        AgentSectionFile {
            default: None,
            rate_limit: file.rate_limit,
            tools: file.tools,
            methods: file.methods,
        },
        &root,
        &mut errors,
    );
    let mut agents: HashMap<String, Section, RandomState> = file
        .agents
        .into_iter()
        .map(|(name, agent)| {
            let compiled = section(agent, &root.agent(&name), &mut errors);
            (name, compiled)
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    // A tool's own result rules add to the top-level ones: a rule that caps a size must not
    // switch off the redaction every result gets.
    if let Some(top) = &results {
        for rule in std::iter::once(&mut global)
            .chain(agents.values_mut())
            .flat_map(|s| s.tools.values_mut())
        {
            rule.results = Some(match &rule.results {
                Some(own) => top.with(own),
                None => top.clone(),
            });
        }
    }
    Ok(CompiledPolicy {
        default: file.default,
        global,
        agents,
        tool_rule_names: tool_rule_names.into_iter().collect(),
        pins: match file.pins.unwrap_or_default() {
            PinModeFile::Enforce => PinMode::Enforce,
            PinModeFile::Warn => PinMode::Warn,
        },
        advertise: file.advertise.unwrap_or(true),
        results,
    })
}

fn section(file: AgentSectionFile, at: &Place, errors: &mut Vec<LoadError>) -> Section {
    Section {
        default: file.default,
        rate_limit: file
            .rate_limit
            .map(|limit| rate_limit(limit, &at.field("rate_limit"))),
        tools: rules(file.tools, |name, rule| {
            tool_rule(rule, &at.child("tools", name), errors)
        }),
        methods: rules(file.methods, |name, rule| {
            method_rule(name, rule, &at.child("methods", name), errors)
        }),
    }
}

fn rules<F, C>(
    file: BTreeMap<String, F>,
    mut compile: impl FnMut(&str, F) -> Option<C>,
) -> HashMap<String, C, RandomState> {
    file.into_iter()
        .filter_map(|(name, rule)| compile(&name, rule).map(|compiled| (name, compiled)))
        .collect()
}

/// The counter of a rule's own limit is named after the rule (`tools.get_price`), not after its
/// `rate_limit` field: that is the name a refused agent and the audit log should read.
fn rate_limit(file: RateLimitFile, at: &Place) -> RateLimit {
    RateLimit::new(
        at.rule.clone(),
        &at.pointer,
        file.max,
        file.window,
        file.per,
    )
}

pub(super) fn tool_rule(
    file: ToolRuleFile,
    at: &Place,
    errors: &mut Vec<LoadError>,
) -> Option<ToolRule> {
    let before = errors.len();
    let (action, action_name) = match file.action {
        ToolActionFile::Allow => (ToolAction::Allow, "allow"),
        ToolActionFile::Deny => (ToolAction::Deny, "deny"),
        ToolActionFile::Approval => {
            let timeout = file.timeout.map_or(DEFAULT_APPROVAL_TIMEOUT, |secs| {
                Duration::from_secs(secs.into())
            });
            let via = file.via.unwrap_or_default();
            (ToolAction::Approval { timeout, via }, "approval")
        }
    };
    // The schema could forbid these with if/then, but its error would not say why.
    if file.action != ToolActionFile::Approval {
        for (field, present) in [
            ("timeout", file.timeout.is_some()),
            ("via", file.via.is_some()),
        ] {
            if present {
                errors.push(LoadError::new(
                    format!("{}/{field}", at.pointer),
                    format!("{field} applies only to action \"approval\", and this rule's action is \"{action_name}\""),
                ));
            }
        }
    }
    let arguments = file.arguments.and_then(|schema| {
        argument_schema(&schema, at)
            .map(|compiled| (compiled, schema))
            .map_err(|error| errors.push(error))
            .ok()
    });
    let pin = file.pin.and_then(|pin| {
        if at.pointer.starts_with("/agents/") {
            errors.push(LoadError::new(
                format!("{}/pin", at.pointer),
                "pins belong to the top-level tools: a definition is the upstream's, not an agent's",
            ));
            return None;
        }
        Digest::parse(&pin)
            .ok_or_else(|| errors.push(LoadError::new(format!("{}/pin", at.pointer), "expected sha256:HEX (64 hex digits)")))
            .ok()
    });
    let results = file.results.and_then(|results| {
        ResultRules::compile(results, &at.pointer)
            .map_err(|more| errors.extend(more))
            .ok()
    });
    (errors.len() == before).then(|| ToolRule {
        rule: at.rule.clone(),
        action,
        reason: file.reason,
        rate_limit: file.rate_limit.map(|limit| rate_limit(limit, at)),
        arguments: arguments.map(|(compiled, schema)| (compiled, schema).into()),
        hide: file.hide,
        pin,
        results,
        scopes: file.scopes,
    })
}

/// Argument schemas run on every call with agent-supplied input, so `pattern` uses the linear-time
/// `regex` engine (no backtracking, so no ReDoS; look-around is refused at load). `format` is
/// checked, because a policy author who writes `"format": "date"` means it. Remote `$ref` cannot be
/// fetched (jsonschema is built without its resolvers) and fails to compile.
fn argument_schema(schema: &serde_json::Value, at: &Place) -> Result<ArgumentSchema, LoadError> {
    jsonschema::options()
        .should_validate_formats(true)
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(schema)
        .map(ArgumentSchema)
        .map_err(|error| {
            let path = format!("{}/arguments{}", at.pointer, error.instance_path().as_str());
            LoadError::new(path, error.to_string())
        })
}

pub(super) fn method_rule(
    name: &str,
    file: MethodRuleFile,
    at: &Place,
    errors: &mut Vec<LoadError>,
) -> Option<MethodRule> {
    // A rule that can never apply is a mistake worth reporting: its author believes it does.
    let never_consulted = if is_lifecycle(name) || method::is_client_notification(name) {
        Some("is a lifecycle method, which always passes")
    } else if name == method::TOOLS_CALL {
        Some("is decided by the rules under \"tools\"")
    } else {
        None
    };
    if let Some(why) = never_consulted {
        errors.push(LoadError::new(
            at.pointer.clone(),
            format!("{name} {why}; a rule for it would never apply"),
        ));
        return None;
    }
    Some(MethodRule {
        rule: at.rule.clone(),
        deny: file.action == MethodActionFile::Deny,
        reason: file.reason,
        rate_limit: file.rate_limit.map(|limit| rate_limit(limit, at)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_name_rules_for_people_and_pointers_for_machines() {
        let root = Place::root();
        let tool = root.child("tools", "get_price");
        assert_eq!(
            (tool.rule.as_str(), tool.pointer.as_str()),
            ("tools.get_price", "/tools/get_price")
        );
        let method = root.agent("bot").child("methods", "resources/read");
        assert_eq!(method.rule, "agents.bot.methods.resources/read");
        assert_eq!(method.pointer, "/agents/bot/methods/resources~1read");
        let limit = root.agent("a~b").field("rate_limit");
        assert_eq!(
            (limit.rule.as_str(), limit.pointer.as_str()),
            ("agents.a~b.rate_limit", "/agents/a~0b/rate_limit")
        );
    }
}
