//! Result rules: what is done to a tool's result before the agent sees it. Matches of the
//! built-in secret sets and of the policy's own patterns are replaced with a marker in every
//! string of the result (text content, structured content, embedded resources), and a result
//! larger than `max_bytes` is withheld. Pure: the exchange hands in each answer, or each event of
//! a streamed one, and relays what comes back.
//!
//! Patterns use the linear-time `regex` engine: results can be large and come from the
//! upstream, so no pattern may backtrack.

use std::fmt;

use regex::Regex;
use serde_json::Value;

use super::file::{RedactSetFile, ResultRulesFile};
use super::load::LoadError;

/// The built-in sets, each a name (the marker says which matched) and its expressions.
const SETS: [(RedactSetFile, &str, &[&str]); 5] = [
    (
        RedactSetFile::PrivateKeys,
        "private_key",
        // PEM private keys (PKCS#1, PKCS#8, EC, OpenSSH, encrypted), and a key cut before its end.
        &[
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----(?s:.*?-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|.*)",
        ],
    ),
    (
        RedactSetFile::CloudKeys,
        "cloud_key",
        &[
            r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b",
            r"(?i)aws_secret_access_key\s*[=:]\s*[A-Za-z0-9/+=]{40}",
            r"\bAIza[0-9A-Za-z_\-]{35}",
            r"AccountKey=[A-Za-z0-9+/=]{40,}",
        ],
    ),
    (
        RedactSetFile::ApiKeys,
        "api_key",
        &[
            r"\bsk-(?:proj-|ant-[a-z0-9]+-)?[A-Za-z0-9_\-]{20,}",
            r"\bgh[pousr]_[A-Za-z0-9]{36,}",
            r"\bgithub_pat_[A-Za-z0-9_]{22,}",
            r"\bxox[abprs]-[A-Za-z0-9\-]{10,}",
            r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",
            r"\bya29\.[0-9A-Za-z_\-]{20,}",
            r"\bmcpg_[0-9a-f]{48}\b",
        ],
    ),
    (
        RedactSetFile::Jwts,
        "jwt",
        &[r"\beyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*"],
    ),
    (
        RedactSetFile::CardNumbers,
        "card_number",
        &[r"\b\d(?:[ \-]?\d){12,18}\b"],
    ),
];

/// Compiled result rules: a rule's own and the top level's, together.
#[derive(Clone)]
pub struct ResultRules {
    redactors: Vec<Redactor>,
    max_bytes: Option<u64>,
}

#[derive(Clone)]
struct Redactor {
    name: String,
    regex: Regex,
    luhn: bool,
}

impl fmt::Debug for ResultRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.redactors.iter().map(|r| r.name.as_str()).collect();
        f.debug_struct("ResultRules")
            .field("redact", &names)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

/// What applying the rules did to one result.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Matches replaced, in all.
    pub redactions: u64,
    /// The result was over `max_bytes` and was replaced: its size.
    pub withheld: Option<u64>,
    /// Which sets or patterns matched, once each, in order.
    pub matched: Vec<String>,
}

impl Applied {
    pub fn changed(&self) -> bool {
        self.redactions > 0 || self.withheld.is_some()
    }
}

impl ResultRules {
    pub(super) fn compile(file: ResultRulesFile, pointer: &str) -> Result<Self, Vec<LoadError>> {
        let mut redactors = Vec::new();
        let mut errors = Vec::new();
        for set in &file.redact {
            let (_, name, expressions) = SETS
                .iter()
                .find(|(s, _, _)| s == set)
                .expect("every set is listed");
            for expression in *expressions {
                redactors.push(Redactor {
                    name: (*name).to_owned(),
                    regex: Regex::new(expression).expect("built-in expressions compile"),
                    luhn: *set == RedactSetFile::CardNumbers,
                });
            }
        }
        for (i, pattern) in file.patterns.iter().enumerate() {
            match Regex::new(pattern) {
                Ok(regex) => redactors.push(Redactor {
                    name: format!("pattern {}", i + 1),
                    regex,
                    luhn: false,
                }),
                Err(err) => errors.push(LoadError::new(
                    format!("{pointer}/results/patterns/{i}"),
                    err.to_string(),
                )),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            redactors,
            max_bytes: file.max_bytes,
        })
    }

    /// These rules and `more` together: every redaction of both, the smaller cap.
    pub(super) fn with(&self, more: &ResultRules) -> ResultRules {
        let mut redactors = self.redactors.clone();
        redactors.extend(more.redactors.iter().cloned());
        let max_bytes = match (self.max_bytes, more.max_bytes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        ResultRules {
            redactors,
            max_bytes,
        }
    }

    pub fn max_bytes(&self) -> Option<u64> {
        self.max_bytes
    }

    /// Applies the rules to a JSON-RPC answer's `result`, in place. An error answer is left alone.
    pub fn apply(&self, answer: &mut Value) -> Applied {
        let mut applied = Applied::default();
        let Some(result) = answer.get_mut("result") else {
            return applied;
        };
        self.redact(result, &mut applied);
        if let Some(max) = self.max_bytes {
            let size = serde_json::to_vec(result).map_or(0, |v| v.len() as u64);
            if size > max {
                applied.withheld = Some(size);
                *result = serde_json::json!({
                    "content": [{"type": "text", "text": format!(
                        "The result was withheld by gateway policy: {size} bytes is over the {max} byte limit (results.max_bytes)")}],
                    "isError": true,
                });
            }
        }
        applied
    }

    fn redact(&self, value: &mut Value, applied: &mut Applied) {
        match value {
            Value::String(text) => {
                if let Some(redacted) = self.redact_text(text, applied) {
                    *text = redacted;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact(v, applied)),
            Value::Object(object) => {
                for (key, v) in object.iter_mut() {
                    // Binary content (images, audio, blobs) is base64: not text to read secrets in.
                    if matches!(key.as_str(), "data" | "blob") && v.is_string() {
                        continue;
                    }
                    self.redact(v, applied);
                }
            }
            _ => {}
        }
    }

    fn redact_text(&self, text: &str, applied: &mut Applied) -> Option<String> {
        let mut current: Option<String> = None;
        for redactor in &self.redactors {
            let source = current.as_deref().unwrap_or(text);
            let mut count = 0;
            let replaced = redactor
                .regex
                .replace_all(source, |captures: &regex::Captures<'_>| {
                    let found = &captures[0];
                    if redactor.luhn && !luhn(found) {
                        return found.to_owned();
                    }
                    count += 1;
                    format!("[REDACTED:{}]", redactor.name)
                });
            if count > 0 {
                applied.redactions += count;
                if !applied.matched.contains(&redactor.name) {
                    applied.matched.push(redactor.name.clone());
                }
                current = Some(replaced.into_owned());
            }
        }
        current
    }
}

/// The Luhn checksum of the digits in `text` (13 to 19 of them): card numbers pass, most other
/// long numbers (order ids, timestamps) do not.
fn luhn(text: &str) -> bool {
    let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(sets: &[RedactSetFile], patterns: &[&str], max_bytes: Option<u64>) -> ResultRules {
        ResultRules::compile(
            ResultRulesFile {
                redact: sets.to_vec(),
                patterns: patterns.iter().map(|p| p.to_string()).collect(),
                max_bytes,
            },
            "",
        )
        .unwrap()
    }

    fn all() -> ResultRules {
        use RedactSetFile::*;
        rules(
            &[PrivateKeys, CloudKeys, ApiKeys, Jwts, CardNumbers],
            &[],
            None,
        )
    }

    #[test]
    fn secrets_in_text_and_structured_content_are_replaced() {
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----";
        let mut answer = json!({"jsonrpc": "2.0", "id": 1, "result": {
            "content": [{"type": "text", "text": format!("here: {key} and sk-proj-abcdefghijklmnopqrstuvwx")}],
            "structuredContent": {"aws": "AKIAIOSFODNN7EXAMPLE", "card": "4111 1111 1111 1111",
                "order": "1234567890123", "jwt": "eyJhbGciOi.eyJzdWIiOi.c2ln"},
            "image": {"type": "image", "data": "AKIAIOSFODNN7EXAMPLE"}}});
        let applied = all().apply(&mut answer);
        let text = answer["result"]["content"][0]["text"].as_str().unwrap();
        assert_eq!(text, "here: [REDACTED:private_key] and [REDACTED:api_key]");
        let structured = &answer["result"]["structuredContent"];
        assert_eq!(structured["aws"], "[REDACTED:cloud_key]");
        assert_eq!(structured["card"], "[REDACTED:card_number]");
        assert_eq!(
            structured["order"], "1234567890123",
            "fails Luhn: not a card"
        );
        assert_eq!(structured["jwt"], "[REDACTED:jwt]");
        assert_eq!(answer["result"]["image"]["data"], "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(applied.redactions, 5);
        assert_eq!(
            applied.matched,
            ["private_key", "api_key", "cloud_key", "card_number", "jwt"],
            "in the order first met"
        );
    }

    #[test]
    fn a_key_cut_before_its_end_is_still_redacted() {
        let mut answer = json!({"result": {"content": [{"type": "text",
            "text": "x -----BEGIN PRIVATE KEY-----\nMIIE"}]}});
        all().apply(&mut answer);
        assert_eq!(
            answer["result"]["content"][0]["text"],
            "x [REDACTED:private_key]"
        );
    }

    #[test]
    fn own_patterns_and_the_size_cap_apply() {
        let rules = rules(&[], &[r"\d{3}-\d{2}-\d{4}"], Some(80));
        let mut small =
            json!({"result": {"content": [{"type": "text", "text": "ssn 123-45-6789"}]}});
        assert_eq!(rules.apply(&mut small).redactions, 1);
        assert_eq!(
            small["result"]["content"][0]["text"],
            "ssn [REDACTED:pattern 1]"
        );
        let mut large = json!({"result": {"content": [{"type": "text", "text": "x".repeat(200)}]}});
        let applied = rules.apply(&mut large);
        assert!(applied.withheld.is_some());
        assert_eq!(large["result"]["isError"], true);
        let mut error = json!({"error": {"code": 1, "message": "123-45-6789"}});
        assert!(!rules.apply(&mut error).changed());
    }

    #[test]
    fn a_bad_pattern_is_a_load_error_at_its_pointer() {
        let errors = ResultRules::compile(
            ResultRulesFile {
                redact: vec![],
                patterns: vec!["(".into()],
                max_bytes: None,
            },
            "/tools/x",
        )
        .unwrap_err();
        assert_eq!(errors[0].path, "/tools/x/results/patterns/0");
    }
}
