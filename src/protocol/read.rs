//! The strict reader: a POST body into [`Message`]s, or the reason it is refused.
//!
//! One pass (`json::scan`) checks the whole body as strictly as `json::parse` (syntax, string
//! encoding, duplicate keys in any letter case at any depth) and gives back each member's text:
//! what policy needs is parsed from its text into values, every other member is kept as that
//! text and never built into a value the gateway does not read. Names that only differ in letter
//! case from ones the gateway reads are refused here too.

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::Value;

use super::message::{member, Body, Kept, Kind, Members, Message, MessageError, Params};
use super::method;
use crate::json::scan::Scan;
use crate::json::{self, StrictJsonError};

/// Parses a POST body: strict JSON, then the JSON-RPC 2.0 envelope of each message.
pub fn parse_body(bytes: &[u8]) -> Result<Body, MessageError> {
    let mut scan = Scan::new(utf8(bytes)?);
    if scan.peek() != Some(b'[') {
        let fields = whole(scan, Keep::Copy)?.ok_or_else(not_an_object)?;
        return classify(fields).map(Body::Single);
    }
    let mut items = Vec::new();
    scan.elements(|scan| fields(scan, Keep::Copy).map(|item| items.push(item)))
        .and_then(|_| scan.end())
        .map_err(refusal)?;
    if items.is_empty() {
        return Err(MessageError::Invalid(
            "an empty batch is not a request".into(),
        ));
    }
    // Every message was read strictly before any is classified: a body with a duplicate key
    // anywhere is refused for that, whatever else is wrong with it.
    items
        .into_iter()
        .map(|item| item.ok_or_else(not_an_object))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(classify)
        .collect::<Result<_, _>>()
        .map(Body::Batch)
}

/// JSON text is UTF-8 (RFC 8259), checked once for the whole text: what is read from it then,
/// strings and members kept as text, is not checked again piece by piece.
pub(super) fn utf8(bytes: &[u8]) -> Result<&str, MessageError> {
    simdutf8::compat::from_utf8(bytes).map_err(|err| {
        MessageError::Parse(format!(
            "JSON text must be UTF-8: invalid byte at offset {}",
            err.valid_up_to()
        ))
    })
}

/// A text of one value, read to its end as a message's members (`None`: it is not an object).
pub(super) fn whole<'t>(
    mut scan: Scan<'t>,
    keep: Keep<'t>,
) -> Result<Option<Fields<'t>>, MessageError> {
    let fields = fields(&mut scan, keep).map_err(refusal)?;
    scan.end().map_err(refusal)?;
    Ok(fields)
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

/// How a kept member's text is held: copied out of the text read, or shared with the body that
/// text is (an answer's `result`, which can be megabytes, is then never copied).
#[derive(Clone, Copy)]
pub(super) enum Keep<'t> {
    Copy,
    Share(&'t Bytes),
}

impl Keep<'_> {
    fn kept(self, text: &str) -> Kept {
        match self {
            Keep::Copy => Kept::copied(text),
            Keep::Share(body) => Kept::shared(body, text),
        }
    }

    /// A member the gateway does not read: its key, and its value kept as text.
    fn member(
        self,
        key: Cow<'_, str>,
        scan: &mut Scan<'_>,
    ) -> Result<(String, Kept), StrictJsonError> {
        Ok((key.into_owned(), self.kept(scan.value()?)))
    }
}

/// A message's members, read strictly but not yet classified.
pub(super) struct Fields<'t> {
    keep: Keep<'t>,
    /// Whether `jsonrpc` is "2.0" (`None`: absent), read without building a value.
    jsonrpc: Option<bool>,
    id: Option<Value>,
    method: Option<Value>,
    params: Option<&'t str>,
    /// Read from `params` when they are a `tools/call`'s object.
    tool_call: Option<ToolCallFields>,
    others: Members,
}

impl Fields<'_> {
    fn is_tool_call(&self) -> bool {
        matches!(&self.method, Some(Value::String(method)) if method == method::TOOLS_CALL)
    }
}

/// Reads the next value as a message's members; `None` if it is not an object (read all the
/// same, as strictly).
fn fields<'t>(scan: &mut Scan<'t>, keep: Keep<'t>) -> Result<Option<Fields<'t>>, StrictJsonError> {
    if scan.peek() != Some(b'{') {
        scan.value()?;
        return Ok(None);
    }
    let mut fields = Fields {
        keep,
        jsonrpc: None,
        id: None,
        method: None,
        params: None,
        tool_call: None,
        others: Members::new(),
    };
    scan.members(|key, scan| {
        match &*key {
            "jsonrpc" => fields.jsonrpc = Some(is_version_2(scan)?),
            "id" => fields.id = Some(scan.build()?),
            "method" => fields.method = Some(scan.build()?),
            "params" if fields.is_tool_call() && scan.peek() == Some(b'{') => {
                let (text, call) = tool_call(scan, keep)?;
                fields.params = Some(text);
                fields.tool_call = Some(call);
            }
            "params" => fields.params = Some(scan.value()?),
            _ => fields.others.push(keep.member(key, scan)?),
        }
        Ok(())
    })?;
    // `params` came before `method`: read again now that it is known to be a tool call's.
    if let Some(params) = fields.params.filter(|params| params.starts_with('{')) {
        if fields.is_tool_call() && fields.tool_call.is_none() {
            fields.tool_call = Some(tool_call(&mut Scan::new(params), keep)?.1);
        }
    }
    Ok(Some(fields))
}

/// Is the value that comes next the string "2.0"? Read strictly, built only if escaped.
fn is_version_2(scan: &mut Scan<'_>) -> Result<bool, StrictJsonError> {
    match scan.peek() {
        Some(b'"') => Ok(scan.str()? == "2.0"),
        _ => scan.value().map(|_| false),
    }
}

/// `params` of a `tools/call`: the object's text, and its members.
fn tool_call<'t>(
    scan: &mut Scan<'t>,
    keep: Keep<'t>,
) -> Result<(&'t str, ToolCallFields), StrictJsonError> {
    let mut call = ToolCallFields::default();
    let text = scan.members(|key, scan| {
        match &*key {
            "name" => call.name = Some(scan.build()?),
            "arguments" => call.arguments = Some(scan.build()?),
            _ => call.others.push(keep.member(key, scan)?),
        }
        Ok(())
    })?;
    Ok((text, call))
}

#[derive(Default)]
struct ToolCallFields {
    name: Option<Value>,
    arguments: Option<Value>,
    others: Members,
}

pub(super) fn classify(fields: Fields<'_>) -> Result<Message, MessageError> {
    refuse_case_variants(&fields.others, &ENVELOPE, MessageError::Invalid)?;
    if fields.jsonrpc != Some(true) {
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
    if let Some(params) = fields.params {
        if !matches!(params.as_bytes().first(), Some(b'{' | b'[')) {
            return Err(MessageError::Invalid(
                r#""params" must be an object or an array"#.into(),
            ));
        }
    }
    let params = match method.as_deref() {
        Some(method::TOOLS_CALL) => Some(tool_call_params(fields.tool_call)?),
        _ => fields
            .params
            .map(|text| Params::Other(fields.keep.kept(text))),
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
        let escaped = single(r#"{"jsonrpc":"2\u002e0","id":2,"method":"ping"}"#).unwrap();
        assert_eq!(escaped.method(), Some("ping"));
    }

    #[test]
    fn refuses_what_is_not_json_rpc() {
        for text in [
            r#"{"id":1,"method":"x"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
            r#"{"jsonrpc":2.0,"id":1,"method":"x"}"#,
            r#"{"jsonrpc":["2.0"],"id":1,"method":"x"}"#,
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
                    crate::protocol::from_upstream::read_message(&Bytes::from_static(body)),
                    Err(MessageError::Parse(why)) if why.contains("UTF-8")
                ),
                "{body:?}"
            );
        }
    }

    #[test]
    fn utf8_is_checked_as_the_standard_library_checks_it_at_every_place_of_a_long_text() {
        let text = "{\"text\":\"é€𝄞 plain ascii\"}".repeat(12).into_bytes();
        assert!(utf8(&text).is_ok());
        for at in 0..text.len() {
            for bad in [0xff, 0x80, 0xc3, 0xed] {
                let mut broken = text.clone();
                broken[at] = bad;
                match (std::str::from_utf8(&broken), utf8(&broken)) {
                    (Ok(_), Ok(_)) => {}
                    (Err(err), Err(MessageError::Parse(why))) => assert!(
                        why.ends_with(&format!("offset {}", err.valid_up_to())),
                        "{why} at {at}"
                    ),
                    (std, ours) => panic!("at {at}: std {std:?}, ours {ours:?}"),
                }
            }
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
