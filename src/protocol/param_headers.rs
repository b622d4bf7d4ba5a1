//! `Mcp-Param-<Name>` (MCP 2026-07-28, SEP-2243): a tool's `inputSchema` may annotate a
//! property with `x-mcp-header`, and a client calling the tool over streamable HTTP mirrors the
//! argument into that header, so that an intermediary can route on it without reading the body.
//!
//! The gateway is both ends of that contract. As a server it checks what a 2026-07-28 client
//! sent against the body (an intermediary in front of it may have routed on the header while the
//! upstream acts on the body); as a client of a 2026-07-28 upstream it writes the headers from
//! the arguments it forwards, never copying the client's. The rules are the transport spec's
//! ("Custom Headers from Tool Parameters"), read as the Python SDK 2.x applies them
//! (`mcp/shared/inbound.py`), so both sides of the gateway agree with the SDKs on what counts:
//! - an annotation counts only on a property reached from the root through `properties` alone,
//!   on an `integer`, `string` or `boolean` property, with an RFC 9110 token for a name, unique
//!   regardless of case; one that breaks a rule makes the whole tool's annotations invalid, and
//!   invalid annotations check nothing (conforming clients drop such a tool and send none);
//! - a header is expected exactly when its argument is present and not `null`; a header without
//!   its argument, or sent twice, is a mismatch;
//! - values are compared after `=?base64?…?=` decoding; integers compare numerically.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::modern::{decode_header_value, encode_header_value, PARAM_HEADER_PREFIX};
use crate::json::{self, SchemaPlace};

const ANNOTATION: &str = "x-mcp-header";

/// The `Mcp-Param-*` headers one tool declares. Empty for a tool without annotations, and for
/// one whose annotations are invalid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamHeaders {
    declared: Vec<Declared>,
}

#[derive(Debug, Clone, PartialEq)]
struct Declared {
    /// `mcp-param-<token>`, lower case: how `HeaderMap` names it.
    name: HeaderName,
    /// The `properties` keys from the root to the annotated property.
    path: Vec<String>,
    integer: bool,
}

impl ParamHeaders {
    /// The declarations of a tool with this `inputSchema`, or why they are invalid.
    pub fn of(input_schema: &Value) -> Result<Self, String> {
        let mut found = Vec::new();
        visit(input_schema, Some(Vec::new()), &mut found)?;
        let mut declared: Vec<Declared> = Vec::with_capacity(found.len());
        for (path, schema) in found {
            let token = &schema[ANNOTATION];
            let where_ = path.join(".");
            let token = token.as_str().filter(|t| is_token(t)).ok_or_else(|| {
                format!("property {where_:?}: {ANNOTATION} {token} is not an RFC 9110 token")
            })?;
            let kind = schema.get("type").and_then(Value::as_str);
            if !matches!(kind, Some("string" | "integer" | "boolean")) {
                return Err(format!(
                    "property {where_:?}: {ANNOTATION} is only allowed on integer, string or boolean properties"
                ));
            }
            let name = format!("{PARAM_HEADER_PREFIX}{}", token.to_ascii_lowercase());
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                format!("property {where_:?}: {ANNOTATION} {token:?} is not a header name")
            })?;
            if declared.iter().any(|d| d.name == name) {
                return Err(format!(
                    "property {where_:?}: {ANNOTATION} {token:?} is declared twice (names ignore case)"
                ));
            }
            declared.push(Declared {
                name,
                path,
                integer: kind == Some("integer"),
            });
        }
        Ok(Self { declared })
    }

    pub fn is_empty(&self) -> bool {
        self.declared.is_empty()
    }

    /// Do the `Mcp-Param-*` headers a client sent agree with the call's `arguments`? The first
    /// disagreement, described for the client, when not.
    pub fn check(&self, headers: &HeaderMap, arguments: Option<&Value>) -> Result<(), String> {
        for declared in &self.declared {
            let name = &declared.name;
            let mut sent = headers.get_all(name).iter();
            let (header, again) = (sent.next(), sent.next());
            if again.is_some() {
                return Err(format!("the {name} header was sent more than once"));
            }
            let argument = declared.path.join(".");
            let value = declared.value_in(arguments);
            let rendered = value.and_then(render);
            match (header, rendered) {
                (None, None) => {}
                (Some(_), None) => {
                    return Err(format!(
                        "the {name} header was sent but the request body's {argument:?} argument is absent"
                    ))
                }
                (None, Some(_)) => {
                    return Err(format!(
                        "the {name} header is missing but the request body's {argument:?} argument is present"
                    ))
                }
                (Some(header), Some(rendered)) => {
                    let decoded = header.to_str().ok().and_then(decode_header_value);
                    let agrees = decoded.is_some_and(|decoded| {
                        decoded == rendered
                            || (declared.integer && same_integer(&decoded, value))
                    });
                    if !agrees {
                        return Err(format!(
                            "the {name} header does not match the request body's {argument:?} argument"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The headers a call with these `arguments` carries: one per argument present and not
    /// `null`, its value encoded when it would not survive as header text.
    pub fn headers_for(&self, arguments: Option<&Value>) -> Vec<(HeaderName, HeaderValue)> {
        self.declared
            .iter()
            .filter_map(|declared| {
                let rendered = render(declared.value_in(arguments)?)?;
                let value = HeaderValue::from_str(&encode_header_value(&rendered)).ok()?;
                Some((declared.name.clone(), value))
            })
            .collect()
    }
}

impl Declared {
    fn value_in<'a>(&self, arguments: Option<&'a Value>) -> Option<&'a Value> {
        let mut node = arguments?;
        for key in &self.path {
            node = node.as_object()?.get(key)?;
        }
        Some(node).filter(|v| !v.is_null())
    }
}

/// Every annotated schema position, with its `properties` path when it has a pure one.
fn visit<'a>(
    schema: &'a Value,
    path: Option<Vec<String>>,
    found: &mut Vec<(Vec<String>, &'a Map<String, Value>)>,
) -> Result<(), String> {
    let Some(schema) = schema.as_object() else {
        return Ok(());
    };
    if schema.contains_key(ANNOTATION) {
        match &path {
            Some(path) if !path.is_empty() => found.push((path.clone(), schema)),
            _ => {
                return Err(format!(
                    "{ANNOTATION} found where no chain of \"properties\" from the root reaches"
                ))
            }
        }
    }
    // Only a chain of `properties` members from the root keeps a path; any other keyword
    // (an item, a branch of `anyOf`, a definition) loses it.
    for (keyword, place, sub) in json::subschemas(schema) {
        let sub_path = match place {
            SchemaPlace::Member(name) if keyword == "properties" => path
                .as_ref()
                .map(|p| [p.as_slice(), &[name.to_owned()]].concat()),
            _ => None,
        };
        visit(sub, sub_path, found)?;
    }
    Ok(())
}

/// RFC 9110 §5.6.2: `token = 1*tchar`.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An argument as a client mirrors it: strings as they are, booleans as `true`/`false`,
/// numbers in their JSON spelling; objects and arrays have no header form.
fn render(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Transport spec: integer parameters SHOULD compare numerically (`42` and `42.0` agree).
/// Only plain decimals compare so, never exponent forms, as in the SDKs.
fn same_integer(header: &str, value: Option<&Value>) -> bool {
    let (whole, fraction) = header.split_once('.').unwrap_or((header, ""));
    let digits = whole.strip_prefix('-').unwrap_or(whole);
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (whole.len() == header.len()
            || (!fraction.is_empty() && fraction.bytes().all(|b| b == b'0')));
    let (Ok(header), Some(number)) = (whole.parse::<i128>(), value.and_then(Value::as_number))
    else {
        return false;
    };
    let body = match (number.as_i64(), number.as_u64(), number.as_f64()) {
        (Some(v), _, _) => i128::from(v),
        (None, Some(v), _) => i128::from(v),
        // Beyond 2^53 a float no longer names one integer.
        (None, None, Some(v)) if v.fract() == 0.0 && v.abs() <= 9_007_199_254_740_992.0 => {
            v as i128
        }
        _ => return false,
    };
    plain && header == body
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn region_and_nested() -> ParamHeaders {
        ParamHeaders::of(&json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "limit": {"type": "integer", "x-mcp-header": "Limit"},
            "options": {"type": "object", "properties": {
                "dry": {"type": "boolean", "x-mcp-header": "Dry-Run"}}},
            "query": {"type": "string"}}}))
        .unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn annotations_count_only_on_a_properties_chain_of_primitive_properties() {
        assert_eq!(region_and_nested().declared.len(), 3);
        for (schema, why) in [
            (
                json!({"type": "object", "x-mcp-header": "Root"}),
                "no chain",
            ),
            (
                json!({"items": {"type": "string", "x-mcp-header": "Item"}}),
                "no chain",
            ),
            (
                json!({"anyOf": [{"properties": {"a": {"type": "string", "x-mcp-header": "A"}}}]}),
                "no chain",
            ),
            (
                json!({"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}),
                "only allowed",
            ),
            (
                json!({"properties": {"a": {"type": "string", "x-mcp-header": "A B"}}}),
                "token",
            ),
            (
                json!({"properties": {"a": {"type": "string", "x-mcp-header": "Dup"},
                    "b": {"type": "string", "x-mcp-header": "dup"}}}),
                "twice",
            ),
        ] {
            let err = ParamHeaders::of(&schema).unwrap_err();
            assert!(err.contains(why), "{schema}: {err}");
        }
        // An annotation-shaped key inside a value (an example, a default) is no annotation.
        let example = json!({"properties": {"a": {"type": "object",
            "default": {"x-mcp-header": "Not-Here"}}}});
        assert!(ParamHeaders::of(&example).unwrap().is_empty());
    }

    #[test]
    fn headers_agreeing_with_the_arguments_pass_and_any_disagreement_is_named() {
        let declared = region_and_nested();
        let arguments = json!({"region": "us-west1", "limit": 42, "options": {"dry": true}});
        let agreeing = headers(&[
            ("mcp-param-region", "us-west1"),
            ("mcp-param-limit", "42.0"),
            ("mcp-param-dry-run", "true"),
        ]);
        assert_eq!(declared.check(&agreeing, Some(&arguments)), Ok(()));
        let absent = json!({"region": null});
        assert_eq!(declared.check(&headers(&[]), Some(&absent)), Ok(()));

        for (sent, expected) in [
            (vec![("mcp-param-region", "eu-west1")], "does not match"),
            (
                vec![("mcp-param-region", "=?base64?dXMtd2VzdDE?")],
                "does not match",
            ),
            (vec![], "is missing"),
            (
                vec![
                    ("mcp-param-region", "us-west1"),
                    ("mcp-param-region", "us-west1"),
                ],
                "more than once",
            ),
        ] {
            let err = declared
                .check(&headers(&sent), Some(&json!({"region": "us-west1"})))
                .unwrap_err();
            assert!(err.contains(expected), "{sent:?}: {err}");
        }
        let err = declared
            .check(&headers(&[("mcp-param-limit", "7")]), Some(&json!({})))
            .unwrap_err();
        assert!(err.contains("absent"), "{err}");
        let err = declared
            .check(
                &headers(&[("mcp-param-limit", "4.2e1")]),
                Some(&json!({"limit": 42})),
            )
            .unwrap_err();
        assert!(err.contains("does not match"), "{err}");
    }

    #[test]
    fn headers_are_written_from_the_arguments_encoded_when_they_would_not_survive() {
        let declared = region_and_nested();
        let written = declared.headers_for(Some(&json!({"region": " Zürich", "limit": 5})));
        let written: Vec<(String, String)> = written
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            written,
            [
                ("mcp-param-region".into(), "=?base64?IFrDvHJpY2g=?=".into()),
                ("mcp-param-limit".into(), "5".into())
            ]
        );
        let back = headers(&[
            ("mcp-param-region", "=?base64?IFrDvHJpY2g=?="),
            ("mcp-param-limit", "5"),
        ]);
        assert_eq!(
            declared.check(&back, Some(&json!({"region": " Zürich", "limit": 5}))),
            Ok(())
        );
    }
}
