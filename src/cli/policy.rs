//! `mcpgate policy …`: the same engine the server runs, from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::Value;

use crate::policy::{Call, CompiledPolicy, DefaultAction};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check a policy file: exit 1 and list every error with its JSON path. Warns about argument
    /// schemas with numeric or string keywords (maximum, pattern, ...) but no "type": they let
    /// values of other types through. With --upstream, also warn about rules for tools the
    /// upstream lacks and upstream tools with no rule.
    Check {
        file: PathBuf,
        /// The upstream MCP endpoint to compare the rules with.
        #[arg(long)]
        upstream: Option<reqwest::Url>,
    },
    /// Print the decision for one call and the rule that made it (rate limits are listed, not
    /// counted).
    Explain {
        file: PathBuf,
        /// Tool name, exactly as the agent would send it.
        tool: String,
        /// The call's arguments as a JSON object.
        #[arg(default_value = "{}")]
        arguments: String,
        /// Decide as this authenticated agent.
        #[arg(long)]
        agent: Option<String>,
    },
    /// Print the JSON Schema of the policy format (what policies/schema.json holds).
    Schema,
    /// Write into the policy, for each tool it allows, the digest of the definition the upstream
    /// offers now (`"pin": "sha256:…"`). A later change of that definition hides the tool and
    /// refuses its calls (`"pins": "warn"` only reports it). Review the tools first.
    Pin {
        file: PathBuf,
        /// The upstream whose tool definitions are pinned.
        #[command(flatten)]
        upstream: super::upstream::UpstreamTarget,
    },
}

pub fn run(command: PolicyCommand) -> ExitCode {
    match command {
        PolicyCommand::Check { file, upstream } => check(file, upstream),
        PolicyCommand::Explain {
            file,
            tool,
            arguments,
            agent,
        } => explain(file, &tool, &arguments, agent.as_deref()),
        PolicyCommand::Pin { file, upstream } => super::pin::pin(&file, &upstream),
        PolicyCommand::Schema => {
            println!("{:#}", crate::policy::file_schema());
            ExitCode::SUCCESS
        }
    }
}

fn check(file: PathBuf, upstream: Option<reqwest::Url>) -> ExitCode {
    let policy = match CompiledPolicy::from_file(&file) {
        Ok(policy) => policy,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}: valid", file.display());
    // The file loaded, so it reads as JSON.
    let text = std::fs::read(&file).unwrap_or_default();
    if let Ok(json) = crate::json::parse(&text) {
        for warning in crate::policy::untyped_argument_keywords(&json) {
            println!("warning: {warning}");
        }
    }
    let Some(url) = upstream else {
        return ExitCode::SUCCESS;
    };
    let target = super::upstream::UpstreamTarget {
        upstream: Some(url),
        upstream_command: None,
        upstream_env: Vec::new(),
    };
    match target.tool_names() {
        Ok(tools) => {
            for warning in coverage_warnings(&policy, &tools) {
                println!("warning: {warning}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("cannot list the tools of {}: {err}", target.shown());
            ExitCode::FAILURE
        }
    }
}

fn coverage_warnings(policy: &CompiledPolicy, upstream_tools: &[String]) -> Vec<String> {
    let mut warnings: Vec<String> = policy
        .tool_rule_names()
        .filter(|name| !upstream_tools.iter().any(|t| t == name))
        .map(|name| format!("rule for tool {name:?}, which the upstream does not have"))
        .collect();
    warnings.extend(
        upstream_tools
            .iter()
            .filter(|tool| !policy.tool_rule_names().any(|name| name == tool.as_str()))
            .map(|tool| {
                let default = match policy.default_action() {
                    DefaultAction::Allow => "allow",
                    DefaultAction::Deny => "deny",
                };
                format!("upstream tool {tool:?} has no rule: the default ({default}) applies")
            }),
    );
    warnings
}

fn explain(file: PathBuf, tool: &str, arguments: &str, agent: Option<&str>) -> ExitCode {
    let policy = match CompiledPolicy::from_file(&file) {
        Ok(policy) => policy,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    let arguments: Value = match crate::json::parse(arguments.as_bytes()) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => {
            eprintln!("arguments must be a JSON object, e.g. '{{\"symbol\":\"BTCUSDT\"}}'");
            return ExitCode::FAILURE;
        }
        Err(err) => {
            eprintln!("arguments are not valid JSON: {err}");
            return ExitCode::FAILURE;
        }
    };
    let call = Call {
        agent,
        method: "tools/call",
        tool: Some(tool),
        arguments: Some(&arguments),
    };
    println!("{}", policy.explain(&call));
    ExitCode::SUCCESS
}
