//! Loading: bytes → `CompiledPolicy`, or every reason it is not one.
//!
//! Three passes, so that a user fixing a policy sees all of its mistakes at once:
//! 1. strict JSON (duplicate keys are refused, and located by `duplicates`);
//! 2. the file against `file_schema()`: unknown fields, bad types, out-of-range numbers, each with
//!    its path — serde alone would stop at the first;
//! 3. `compile`: what a schema cannot say well (a timeout on a non-approval rule, an argument schema
//!    that does not compile, a rule for a method that is never policed).
//!
//! When pass 2 fails, pass 3 still runs on every rule that is well-formed on its own.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::compile;
use super::duplicates;
use super::file::{file_schema, MethodRuleFile, PolicyFile, ToolRuleFile};
use super::CompiledPolicy;
use crate::json::StrictJsonError;

/// One reason a policy did not load, at a JSON pointer into the file ("" is the whole document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub path: String,
    pub message: String,
}

/// Every reason a policy did not load; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadErrors(pub Vec<LoadError>);

impl LoadError {
    pub(super) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        LoadError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(root)"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.message)
    }
}

/// One line per error.
impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

pub(super) fn load(bytes: &[u8]) -> Result<CompiledPolicy, LoadErrors> {
    let value = crate::json::parse(bytes).map_err(|error| match error {
        StrictJsonError::DuplicateKey(_) => LoadErrors(duplicates::locate(bytes)),
        StrictJsonError::Syntax(message) => LoadErrors(vec![LoadError::new("", message)]),
    })?;
    let mut errors = structure_errors(&value);
    if !errors.is_empty() {
        let rule_errors = rule_errors(&value, &errors);
        errors.extend(rule_errors);
        return Err(LoadErrors(errors));
    }
    // The schema check passed, so serde agrees; an error here would be a schema/type mismatch.
    let file = PolicyFile::deserialize(&value)
        .map_err(|error| LoadErrors(vec![LoadError::new("", error.to_string())]))?;
    compile::compile(file).map_err(LoadErrors)
}

fn structure_errors(value: &Value) -> Vec<LoadError> {
    let validator = jsonschema::validator_for(&file_schema())
        .expect("the generated file schema is a valid JSON Schema");
    validator
        .iter_errors(value)
        .map(|error| LoadError::new(error.instance_path().as_str(), error.to_string()))
        .collect()
}

/// Pass 3 on a file that failed pass 2: compiles each rule that pass 2 found nothing wrong with,
/// for its errors only (a rule with a structural mistake would only add noise, or worse: a
/// `max` of 0 is not a rate limit).
fn rule_errors(value: &Value, structural: &[LoadError]) -> Vec<LoadError> {
    let sound = |at: &compile::Place| {
        let pointer = at.pointer();
        !structural.iter().any(|e| {
            e.path
                .strip_prefix(pointer)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    };
    let mut errors = Vec::new();
    let mut check_section = |section: &Value, at: &compile::Place| {
        for (name, rule) in entries(section, "tools") {
            let at = at.child("tools", name);
            if let (true, Ok(rule)) = (sound(&at), ToolRuleFile::deserialize(rule)) {
                compile::tool_rule(rule, &at, &mut errors);
            }
        }
        for (name, rule) in entries(section, "methods") {
            let at = at.child("methods", name);
            if let (true, Ok(rule)) = (sound(&at), MethodRuleFile::deserialize(rule)) {
                compile::method_rule(name, rule, &at, &mut errors);
            }
        }
    };
    let root = compile::Place::root();
    check_section(value, &root);
    for (agent, section) in entries(value, "agents") {
        check_section(section, &root.agent(agent));
    }
    errors
}

fn entries<'v>(value: &'v Value, field: &str) -> impl Iterator<Item = (&'v str, &'v Value)> {
    value
        .get(field)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, rule)| (name.as_str(), rule))
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
