//! `mcpgate policy pin POLICY --upstream URL` (or `--upstream-command 'PROGRAM ARGS…'`, a stdio
//! server started for it and stopped after): writes into the policy, for each tool it allows,
//! the digest of the definition the upstream offers now, so that the gateway can tell when that
//! definition changes (`policy::pins`). Run it after reviewing the tools; run it again after
//! reviewing a change.

use std::path::Path;
use std::process::ExitCode;

use serde_json::{Map, Value};

use super::upstream::UpstreamTarget;
use crate::policy::pins::Digest;
use crate::policy::{CompiledPolicy, DefaultAction};

pub fn pin(file: &Path, upstream: &UpstreamTarget) -> ExitCode {
    let text = match std::fs::read(file) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("cannot read {}: {err}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let policy = match CompiledPolicy::from_json_slice(&text) {
        Ok(policy) => policy,
        Err(errors) => {
            eprintln!(
                "{} is invalid; fix it before pinning:\n{errors}",
                file.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let tools = match upstream.tool_definitions() {
        Ok(tools) => tools,
        Err(err) => {
            eprintln!("cannot list the tools of {}: {err}", upstream.shown());
            return ExitCode::FAILURE;
        }
    };
    let mut document: Value = serde_json::from_slice(&text).expect("a policy that loaded is JSON");
    match pin_into(&policy, &mut document, &tools) {
        Ok(report) => {
            for line in report {
                eprintln!("{line}");
            }
        }
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    }
    let written = serde_json::to_string_pretty(&document).expect("JSON serialises") + "\n";
    if let Err(err) = CompiledPolicy::from_json_slice(written.as_bytes()) {
        eprintln!("the pinned policy would not load, nothing written:\n{err}");
        return ExitCode::FAILURE;
    }
    // Written whole to a file beside it, then renamed: the gateway watching it never reads half.
    let temporary = file.with_extension("pinning");
    if let Err(err) =
        std::fs::write(&temporary, written).and_then(|()| std::fs::rename(&temporary, file))
    {
        eprintln!("cannot write {}: {err}", file.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Sets `tools.NAME.pin` for each upstream tool the top level allows. A tool with no top-level
/// rule gets an entry only when the default is allow (an entry `{"pin": …}` allows, so under
/// default deny it would open the tool); those are reported instead.
pub fn pin_into(
    policy: &CompiledPolicy,
    document: &mut Value,
    tools: &[Value],
) -> Result<Vec<String>, String> {
    let mut report = Vec::new();
    let mut names: Vec<&str> = tools
        .iter()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .collect();
    names.sort_unstable();
    if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!(
            "the upstream lists two tools named {:?}: nothing can be pinned until it lists one",
            twice[0]
        ));
    }
    let rules = document
        .as_object_mut()
        .ok_or("a policy is a JSON object")?
        .entry("tools")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or("\"tools\" is an object")?;
    for tool in tools {
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            continue;
        };
        if !policy.tool_visible(None, name) {
            continue;
        }
        let has_rule = rules.contains_key(name);
        if !has_rule && policy.default_action() != DefaultAction::Allow {
            report.push(format!(
                "{name}: allowed only in agent sections, not pinned"
            ));
            continue;
        }
        let digest = Digest::of_definition(tool).to_string();
        let rule = rules
            .entry(name.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        let before = rule.get("pin").cloned();
        rule["pin"] = Value::String(digest.clone());
        report.push(match before {
            Some(Value::String(old)) if old == digest => format!("{name}: unchanged"),
            Some(_) => format!("{name}: re-pinned {digest}"),
            None => format!("{name}: pinned {digest}"),
        });
    }
    Ok(report)
}
