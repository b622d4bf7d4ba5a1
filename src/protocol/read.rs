//! The strict reader: a POST body into [`Message`]s, or the reason it is refused.
//!
//! One pass reads what policy needs into values; every other member is kept as text, checked as
//! strictly as the rest (`json::check`: syntax, string encoding, duplicate keys at any depth) but
//! never built into a value the gateway does not read. Names that only differ in letter case
//! from ones the gateway reads are refused here too.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use super::message::{member, Body, Kind, Members, Message, MessageError, Params};
use super::method;
use crate::json::{self, StrictJsonError};

/// Parses a POST body: strict JSON, then the JSON-RPC 2.0 envelope of each message.
pub fn parse_body(bytes: &[u8]) -> Result<Body, MessageError> {
    match read(utf8(bytes)?, TopSeed)? {
        Top::Array(items) if items.is_empty() => Err(MessageError::Invalid(
            "an empty batch is not a request".into(),
        )),
        // Every message is read strictly before any is classified: a body with a duplicate key
        // anywhere is refused for that, whatever else is wrong with it.
        Top::Array(items) => items
            .iter()
            .map(|item| match read(item.get(), TopSeed)? {
                Top::Object(fields) => check_members(fields),
                _ => Err(not_an_object()),
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(classify)
            .collect::<Result<_, _>>()
            .map(Body::Batch),
        Top::Object(fields) => classify(check_members(fields)?).map(Body::Single),
        Top::Other => Err(not_an_object()),
    }
}

/// JSON text is UTF-8 (RFC 8259), checked once for the whole text: what is read from it then,
/// strings and members kept as text, is not checked again piece by piece.
pub(super) fn utf8(bytes: &[u8]) -> Result<&str, MessageError> {
    std::str::from_utf8(bytes).map_err(|err| {
        MessageError::Parse(format!(
            "JSON text must be UTF-8: invalid byte at offset {}",
            err.valid_up_to()
        ))
    })
}

pub(super) fn read<'de, S: DeserializeSeed<'de>>(
    text: &'de str,
    seed: S,
) -> Result<S::Value, MessageError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = seed.deserialize(&mut de).map_err(json::classify);
    value
        .and_then(|value| de.end().map(|()| value).map_err(json::classify))
        .map_err(refusal)
}

/// Text kept as it came is checked as strictly as what is parsed: serde_json's raw capture
/// alone lets through what its parser refuses (a lone surrogate) and repeated keys.
fn check_kept(raw: &RawValue) -> Result<(), MessageError> {
    json::check_text(raw.get()).map_err(refusal)
}

fn refusal(err: StrictJsonError) -> MessageError {
    match err {
        StrictJsonError::Syntax(text) => MessageError::Parse(text),
        StrictJsonError::DuplicateKey(_) => MessageError::Invalid(err.to_string()),
    }
}

pub(super) fn not_an_object() -> MessageError {
    MessageError::Invalid("a JSON-RPC message is a JSON object".into())
}

/// A body's top level: one message, a batch of them (each kept as text), or neither.
pub(super) struct TopSeed;

#[expect(
    clippy::large_enum_variant,
    reason = "lives on the stack while one body is read"
)]
pub(super) enum Top {
    Object(Fields),
    Array(Vec<Box<RawValue>>),
    Other,
}

/// A message's members, read but not yet classified.
#[derive(Default)]
pub(super) struct Fields {
    jsonrpc: Option<Value>,
    id: Option<Value>,
    method: Option<Value>,
    params: Option<Box<RawValue>>,
    others: Members,
}

impl<'de> DeserializeSeed<'de> for TopSeed {
    type Value = Top;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Top, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message or a batch of them")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut fields = Fields::default();
        let mut keys = json::Keys::default();
        while let Some(key) = map.next_key_seed(json::Key)? {
            keys.insert(key.clone())
                .map_err(|key| json::duplicate(&key))?;
            let known = match &*key {
                "jsonrpc" => Some(&mut fields.jsonrpc),
                "id" => Some(&mut fields.id),
                "method" => Some(&mut fields.method),
                _ => None,
            };
            match known {
                Some(slot) => *slot = Some(map.next_value_seed(json::StrictValue)?),
                None if key == "params" => fields.params = Some(map.next_value()?),
                None => fields.others.push((key.into_owned(), map.next_value()?)),
            }
        }
        Ok(Top::Object(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Top::Array(items))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Top, E> {
        Ok(Top::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Top, E> {
        Ok(Top::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Top, E> {
        Ok(Top::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Top, E> {
        Ok(Top::Other)
    }

    fn visit_str<E>(self, _: &str) -> Result<Top, E> {
        Ok(Top::Other)
    }

    fn visit_unit<E>(self) -> Result<Top, E> {
        Ok(Top::Other)
    }
}

/// A message all of whose members were read or checked strictly; `tool_call` holds the params
/// of a `tools/call` that has object params.
pub(super) struct Checked {
    fields: Fields,
    tool_call: Option<ToolCallFields>,
}

pub(super) fn check_members(fields: Fields) -> Result<Checked, MessageError> {
    for (_, raw) in &fields.others {
        check_kept(raw)?;
    }
    let is_tool_call =
        matches!(&fields.method, Some(Value::String(method)) if method == method::TOOLS_CALL);
    let tool_call = match &fields.params {
        Some(params) if is_tool_call => read(params.get(), ToolCallParams)?,
        Some(params) => {
            check_kept(params)?;
            None
        }
        None => None,
    };
    for (_, raw) in tool_call.iter().flat_map(|call| &call.others) {
        check_kept(raw)?;
    }
    Ok(Checked { fields, tool_call })
}

pub(super) fn classify(Checked { fields, tool_call }: Checked) -> Result<Message, MessageError> {
    refuse_case_variants(&fields.others, &ENVELOPE, MessageError::Invalid)?;
    if fields.jsonrpc.as_ref().and_then(Value::as_str) != Some("2.0") {
        return Err(MessageError::Invalid(r#""jsonrpc" must be "2.0""#.into()));
    }
    if let Some(id) = &fields.id {
        // JSON-RPC allows null ids only in error responses; MCP forbids them in requests.
        if !(id.is_string() || id.is_i64() || id.is_u64()) {
            return Err(MessageError::Invalid(
                r#""id" must be a string or an integer"#.into(),
            ));
        }
    }
    let has = |key: &str| member(&fields.others, key).is_some();
    let (kind, method) = match (fields.method, &fields.id) {
        (Some(Value::String(method)), Some(_)) => (Kind::Request, Some(method)),
        (Some(Value::String(method)), None) => (Kind::Notification, Some(method)),
        (Some(_), _) => return Err(MessageError::Invalid(r#""method" must be a string"#.into())),
        (None, Some(_)) if has("result") != has("error") => (Kind::Response, None),
        (None, _) => {
            return Err(MessageError::Invalid(
                r#"a message needs a "method" (request, notification) or an "id" with "result" or "error" (response)"#.into(),
            ))
        }
    };
    if let Some(method) = &method {
        check_method_name(method)?;
    }
    if let Some(params) = &fields.params {
        if !matches!(
            params.get().trim_start().as_bytes().first(),
            Some(b'{' | b'[')
        ) {
            return Err(MessageError::Invalid(
                r#""params" must be an object or an array"#.into(),
            ));
        }
    }
    let params = match method.as_deref() {
        Some(method::TOOLS_CALL) => Some(tool_call_params(tool_call)?),
        _ => fields.params.map(Params::Other),
    };
    Ok(Message {
        kind,
        id: fields.id,
        method,
        params,
        others: fields.others,
    })
}

/// JSON-RPC's members, and those of `tools/call` params.
const ENVELOPE: [&str; 6] = ["jsonrpc", "id", "method", "params", "result", "error"];
const TOOL_CALL: [&str; 3] = ["name", "arguments", "_meta"];

/// A member named like one the gateway reads, in other letters' case (`"Arguments"`), is refused:
/// an upstream that matches names without case (Go's encoding/json, .NET's web defaults) would
/// read it as that member, which policy never saw. Beside the real one, it is a repeated key.
pub(super) fn refuse_case_variants(
    others: &Members,
    known: &[&str],
    refusal: fn(String) -> MessageError,
) -> Result<(), MessageError> {
    for (key, _) in others {
        let variant = known
            .iter()
            .find(|known| **known != key && json::same_key(known, key));
        if let Some(meant) = variant {
            return Err(refusal(format!(
                "member {key:?}: member names are case-sensitive; did you mean {meant:?}?"
            )));
        }
    }
    Ok(())
}

fn check_method_name(method: &str) -> Result<(), MessageError> {
    let plain = !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_.-$".contains(&b));
    if !plain {
        return Err(MessageError::Invalid(format!(
            "method {method:?}: method names are ASCII letters, digits and / _ . - $"
        )));
    }
    if let Some(known) = method::POLICED
        .iter()
        .find(|known| **known != method && known.eq_ignore_ascii_case(method))
    {
        return Err(MessageError::Invalid(format!(
            "method {method:?}: method names are case-sensitive; did you mean {known:?}?"
        )));
    }
    Ok(())
}

fn tool_call_params(fields: Option<ToolCallFields>) -> Result<Params, MessageError> {
    let Some(fields) = fields else {
        return Err(MessageError::InvalidParams(
            r#"tools/call needs "params" with a "name""#.into(),
        ));
    };
    refuse_case_variants(&fields.others, &TOOL_CALL, MessageError::InvalidParams)?;
    let Some(Value::String(name)) = fields.name else {
        return Err(MessageError::InvalidParams(
            r#"tools/call needs "params.name", a string"#.into(),
        ));
    };
    match fields.arguments {
        None | Some(Value::Object(_)) => Ok(Params::ToolCall {
            name,
            arguments: fields.arguments,
            others: fields.others,
        }),
        Some(_) => Err(MessageError::InvalidParams(
            r#""params.arguments" must be an object"#.into(),
        )),
    }
}

/// `params` of a `tools/call`, read strictly: `None` if it is not an object.
struct ToolCallParams;

#[derive(Default)]
struct ToolCallFields {
    name: Option<Value>,
    arguments: Option<Value>,
    others: Members,
}

impl<'de> DeserializeSeed<'de> for ToolCallParams {
    type Value = Option<ToolCallFields>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ToolCallParams {
    type Value = Option<ToolCallFields>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("tools/call params")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = ToolCallFields::default();
        let mut keys = json::Keys::default();
        while let Some(key) = map.next_key_seed(json::Key)? {
            keys.insert(key.clone())
                .map_err(|key| json::duplicate(&key))?;
            match &*key {
                "name" => fields.name = Some(map.next_value_seed(json::StrictValue)?),
                "arguments" => fields.arguments = Some(map.next_value_seed(json::StrictValue)?),
                _ => fields.others.push((key.into_owned(), map.next_value()?)),
            }
        }
        Ok(Some(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element_seed(json::StrictValue)?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn single(text: &str) -> Result<Message, MessageError> {
        match parse_body(text.as_bytes())? {
            Body::Single(message) => Ok(message),
            Body::Batch(_) => panic!("expected one message"),
        }
    }

    #[test]
    fn classifies_requests_notifications_and_responses() {
        let request = single(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
        assert_eq!(request.kind, Kind::Request);
        assert_eq!(request.method(), Some("tools/list"));
        let note = single(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(note.kind, Kind::Notification);
        let response = single(r#"{"jsonrpc":"2.0","id":"e1","result":{}}"#).unwrap();
        assert_eq!(response.kind, Kind::Response);
    }

    #[test]
    fn refuses_what_is_not_json_rpc() {
        for text in [
            r#"{"id":1,"method":"x"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":"p"}"#,
            r#""just a string""#,
            "[]",
        ] {
            assert!(
                matches!(single(text), Err(MessageError::Invalid(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn method_names_with_other_case_spaces_or_unicode_are_refused() {
        for method in [
            "Tools/Call",
            "TOOLS/CALL",
            "tools/call ",
            " tools/call",
            r"tools/\u200bcall",
            "ｔools/call",
            r"tools/list\n",
            "",
        ] {
            let text = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{"name":"x"}}}}"#
            );
            assert!(
                matches!(single(&text), Err(MessageError::Invalid(_))),
                "{method:?}"
            );
        }
        assert!(single(r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#).is_ok());
    }

    #[test]
    fn tools_call_needs_a_string_name_and_object_arguments() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["get_price"]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":[1]}}"#,
        ] {
            assert!(
                matches!(single(text), Err(MessageError::InvalidParams(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn duplicate_keys_are_invalid_requests_and_syntax_errors_are_parse_errors() {
        let dup =
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#;
        assert!(matches!(single(dup), Err(MessageError::Invalid(_))));
        assert!(matches!(single("{"), Err(MessageError::Parse(_))));
    }

    #[test]
    fn forwarding_reproduces_numbers_exactly() {
        // Found by fuzzing: without serde_json's float_roundtrip, the last digit of some floats
        // changed between the value evaluated and the bytes forwarded.
        let text = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":9.223372036073708e+21,"b":0.1,"c":-1.7976931348623157e308}}}"#;
        let message = single(text).unwrap();
        let forwarded: Value = serde_json::from_slice(&message.to_bytes()).unwrap();
        let sent: Value = serde_json::from_str(text).unwrap();
        assert_eq!(forwarded, sent);
    }

    #[test]
    fn an_envelope_is_written_into_meta_and_nothing_else_changes() {
        let entries = |v: Value| v.as_object().unwrap().clone();
        let call = single(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"n":12345678901234567890123},"_meta":{"progressToken":7}}}"#).unwrap();
        let sent: Value =
            serde_json::from_slice(&call.with_meta(entries(json!({"k": "v"}))).to_bytes()).unwrap();
        assert_eq!(
            sent["params"]["_meta"],
            json!({"progressToken": 7, "k": "v"})
        );
        assert_eq!(sent["params"]["name"], "t");
        let original: Value = serde_json::from_slice(&call.to_bytes()).unwrap();
        assert_eq!(sent["params"]["arguments"], original["params"]["arguments"]);
        let list =
            single(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"cursor":"c"}}"#)
                .unwrap();
        let sent: Value =
            serde_json::from_slice(&list.with_meta(entries(json!({"k": 1}))).to_bytes()).unwrap();
        assert_eq!(sent["params"], json!({"cursor": "c", "_meta": {"k": 1}}));
        let bare = single(r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#).unwrap();
        let sent: Value =
            serde_json::from_slice(&bare.with_meta(entries(json!({"k": 1}))).to_bytes()).unwrap();
        assert_eq!(
            sent,
            json!({"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {"_meta": {"k": 1}}})
        );
    }

    #[test]
    fn batches_are_classified_element_by_element() {
        let text = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"}]"#;
        match parse_body(text.as_bytes()).unwrap() {
            Body::Batch(items) => assert_eq!(items.len(), 2),
            Body::Single(_) => panic!("expected a batch"),
        }
    }

    #[test]
    fn text_that_is_not_utf8_anywhere_is_a_parse_error() {
        let bodies: [&[u8]; 3] = [
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"t\",\"arguments\":{\"s\":\"\xff\"}}}",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"_meta\":{\"n\":\"\xc3\"}}}",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"text\":\"\xed\xa0\x80\"}]}}",
        ];
        for body in bodies {
            assert!(
                matches!(parse_body(body), Err(MessageError::Parse(why)) if why.contains("UTF-8")),
                "{body:?}"
            );
            assert!(
                matches!(
                    crate::protocol::from_upstream::read_message(body),
                    Err(MessageError::Parse(why)) if why.contains("UTF-8")
                ),
                "{body:?}"
            );
        }
    }

    #[test]
    fn kept_text_is_as_strictly_checked_as_what_is_parsed() {
        // Found by fuzzing: serde_json keeps a lone surrogate in raw text it would refuse to parse.
        let surrogate = |err: &MessageError| matches!(err, MessageError::Parse(_));
        let duplicate =
            |err: &MessageError| matches!(err, MessageError::Invalid(m) if m.contains("duplicate"));
        for (kept, refused) in [
            (
                r#""params":{"name":"t","_meta":{"note":"\ude00"}}"#,
                &surrogate as &dyn Fn(&MessageError) -> bool,
            ),
            (r#""params":{"name":"t","_meta":{"a":1,"a":2}}"#, &duplicate),
        ] {
            let text = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call",{kept}}}"#);
            let other = text.replace("tools/call", "resources/read");
            let response = format!(r#"{{"jsonrpc":"2.0","id":1,"result":{{{kept}}}}}"#);
            for body in [text, other, response] {
                match single(&body) {
                    Err(err) if refused(&err) => {}
                    got => panic!("{body}: {got:?}"),
                }
            }
        }
    }

    #[test]
    fn members_named_like_the_ones_policy_reads_in_other_letter_case_are_refused() {
        for (text, params_level) in [
            (r#"{"jsonrpc":"2.0","ID":1,"method":"ping"}"#, false),
            (r#"{"jsonrpc":"2.0","id":1,"Method":"tools/call"}"#, false),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping","Params":{"name":"x"}}"#,
                false,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","Arguments":{}}}"#,
                true,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","NAME":"b"}}"#,
                false,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","\u212aey":1,"argument\u017f":{}}}"#,
                true,
            ),
        ] {
            match single(text) {
                Err(MessageError::InvalidParams(_)) if params_level => {}
                Err(MessageError::Invalid(_)) if !params_level => {}
                other => panic!("{text}: {other:?}"),
            }
        }
        let unrelated = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","Names":1},"idx":2}"#;
        assert!(single(unrelated).is_ok());
    }
}
