//! The strict reader for what the upstream sends (a JSON answer body, each SSE event's data).
//!
//! An upstream is on the other side of the boundary too: what it answers to `tools/list` is what
//! the model sees, so a hostile one must not get hidden tools past the filter by shaping its
//! answer so that the gateway reads one thing and the client another. Its messages go through
//! the same reader as an agent's (`read.rs`: syntax, encoding, duplicate keys in any letter case
//! at any depth, envelope members in another case refused), and then:
//!
//! - one message at a time: a JSON array (a batch) is refused;
//! - a message is a request, a notification or a response, never two: a `method` beside
//!   `result` or `error` is refused (a client may take it for either);
//! - in a `tools/list` result, `tools` and each tool's `name` in another letter case are refused.
//!
//! Which answers may be relayed to whom (only the answer to the request sent) is decided by the
//! exchange; this module only says what a message is.

use bytes::Bytes;
use bytestring::ByteString;
use serde_json::{Map, Value};

use super::message::{member, Kept, Kind, Message, MessageError};
use super::read::{classify, not_an_object, utf8, whole, Keep};
use crate::json;
use crate::json::scan::Scan;

/// Reads one message the upstream sent, or says why it is not relayed. What is kept of it as
/// text (its `result`) shares `body`.
pub fn read_message(body: &Bytes) -> Result<Message, MessageError> {
    read(utf8(body)?, Keep::Share(body))
}

/// [`read_message`] for text already known to be UTF-8 (an SSE event's data).
pub fn read_message_text(text: &ByteString) -> Result<Message, MessageError> {
    read(text, Keep::Share(text.as_bytes()))
}

fn read<'t>(text: &'t str, keep: Keep<'t>) -> Result<Message, MessageError> {
    let mut scan = Scan::new(text);
    let batch = scan.peek() == Some(b'[');
    let fields = whole(scan, keep)?;
    if batch {
        return Err(MessageError::Invalid(
            "a JSON array: the upstream's messages are read one at a time".into(),
        ));
    }
    let message = classify(fields.ok_or_else(not_an_object)?)?;
    let answers =
        member(&message.others, "result").is_some() || member(&message.others, "error").is_some();
    if message.method.is_some() && answers {
        return Err(MessageError::Invalid(
            r#"a message with a "method" is a request or notification; it cannot also carry "result" or "error""#.into(),
        ));
    }
    Ok(message)
}

impl Message {
    /// Is this the response to the request with `id` (exactly that id: `1` is not `"1"`)?
    pub fn answers(&self, id: &Value) -> bool {
        self.kind == Kind::Response && self.id.as_ref() == Some(id)
    }

    /// Is this an error response?
    pub fn is_error(&self) -> bool {
        self.kind == Kind::Response && member(&self.others, "error").is_some()
    }
}

/// The `result` of a response to `tools/list`, read strictly, for the gateway to remove what an
/// agent may not see.
pub struct ToolList {
    result: Map<String, Value>,
}

const TOOLS: &str = "tools";
const NAME: &str = "name";

impl ToolList {
    /// The tool list `answer` carries; `None` for an error response (it lists nothing).
    pub fn of(answer: &Message) -> Result<Option<Self>, MessageError> {
        if answer.is_error() {
            return Ok(None);
        }
        let invalid = |why: &str| MessageError::Invalid(format!("tools/list answer: {why}"));
        let raw = member(&answer.others, "result").ok_or_else(|| invalid("no \"result\""))?;
        let Ok(Value::Object(result)) = json::parse(raw.as_bytes()) else {
            return Err(invalid("\"result\" is not an object"));
        };
        refuse_case_variant(result.keys(), TOOLS)?;
        let Some(Value::Array(tools)) = result.get(TOOLS) else {
            return Err(invalid("no \"result.tools\" array"));
        };
        for tool in tools.iter().filter_map(Value::as_object) {
            refuse_case_variant(tool.keys(), NAME)?;
        }
        Ok(Some(Self { result }))
    }

    /// Every tool's name, as the upstream listed them.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools().iter().filter_map(tool_name)
    }

    /// Keeps the tools whose name `visible` accepts; a tool without a string name is dropped.
    pub fn retain(&mut self, mut visible: impl FnMut(&str) -> bool) {
        if let Some(Value::Array(tools)) = self.result.get_mut(TOOLS) {
            tools.retain(|tool| tool_name(tool).is_some_and(&mut visible));
        }
    }

    /// Puts this (filtered) list in place of `answer`'s result.
    pub fn write_into(self, answer: &mut Message) {
        let text = serde_json::to_string(&Value::Object(self.result))
            .expect("a serde_json::Value always serialises");
        let kept = Kept::written(text);
        match answer.others.iter_mut().find(|(key, _)| key == "result") {
            Some((_, result)) => *result = kept,
            None => answer.others.push(("result".into(), kept)),
        }
    }

    /// The tools as listed, to be read (pin checks) or amended (advertised rules).
    pub fn tools_mut(&mut self) -> &mut [Value] {
        match self.result.get_mut(TOOLS) {
            Some(Value::Array(tools)) => tools,
            _ => &mut [],
        }
    }

    pub fn tools(&self) -> &[Value] {
        match self.result.get(TOOLS) {
            Some(Value::Array(tools)) => tools,
            _ => &[],
        }
    }
}

fn tool_name(tool: &Value) -> Option<&str> {
    tool.get(NAME).and_then(Value::as_str)
}

/// A member spelled like one the gateway reads but in other letters' case (`"Tools"`) is
/// refused: a client that matches names without case would read what the filter never saw.
fn refuse_case_variant<'a>(
    keys: impl Iterator<Item = &'a String>,
    known: &str,
) -> Result<(), MessageError> {
    for key in keys {
        if key != known && json::same_key(key, known) {
            return Err(MessageError::Invalid(format!(
                "member {key:?}: member names are case-sensitive; {known:?} was expected"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read_message(data: &[u8]) -> Result<Message, MessageError> {
        super::read_message(&Bytes::copy_from_slice(data))
    }

    #[test]
    fn an_answer_written_as_the_gateway_writes_it_is_relayed_as_it_came() {
        let canonical = Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"ok"}]}}"#,
        );
        let answer = super::read_message(&canonical).unwrap();
        let relayed = answer.to_bytes_from(&canonical);
        assert_eq!(relayed.as_ptr(), canonical.as_ptr(), "copied, not relayed");
        assert_eq!(relayed, answer.to_bytes());
        for other in [
            r#"{"jsonrpc": "2.0", "id": 7, "result": {}}"#,
            r#"{"id":7,"jsonrpc":"2.0","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":7,"result":{}} "#,
            r#"{"jsonrpc":"2\u002e0","id":7,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":"\u0037","result":{}}"#,
        ] {
            let body = Bytes::from(other);
            let answer = super::read_message(&body).unwrap();
            let relayed = answer.to_bytes_from(&body);
            assert_eq!(relayed, answer.to_bytes(), "{other}");
            assert_ne!(relayed, body, "{other}");
        }
        let list = Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"},{"name":"b"}]}}"#,
        );
        let mut answer = super::read_message(&list).unwrap();
        let mut tools = ToolList::of(&answer).unwrap().unwrap();
        tools.retain(|name| name == "a");
        tools.write_into(&mut answer);
        let relayed = answer.to_bytes_from(&list);
        assert_eq!(
            &relayed[..],
            br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"}]}}"#
        );
    }

    fn refused(text: &str) -> bool {
        read_message(text.as_bytes()).is_err()
    }

    #[test]
    fn reads_responses_requests_and_notifications() {
        let answer = read_message(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#).unwrap();
        assert!(answer.answers(&json!(3)));
        assert!(!answer.answers(&json!("3")));
        let request =
            read_message(br#"{"jsonrpc":"2.0","id":"e1","method":"elicitation/create"}"#).unwrap();
        assert_eq!(request.kind, Kind::Request);
        assert!(!request.answers(&json!("e1")));
        let note = read_message(br#"{"jsonrpc":"2.0","method":"notifications/progress"}"#);
        assert_eq!(note.unwrap().kind, Kind::Notification);
    }

    #[test]
    fn refuses_shapes_a_client_might_read_otherwise() {
        for text in [
            r#"[{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}]"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","result":{"tools":[]}}"#,
            r#"{"jsonrpc":"2.0","method":"x","error":{"code":1,"message":"m"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"Result":{"tools":[]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]},"RESULT":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[],"tools":[]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}"#,
            r#"{"jsonrpc":"1.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":null,"result":{}}"#,
            "42",
        ] {
            assert!(refused(text), "{text}");
        }
    }

    #[test]
    fn a_tool_list_refuses_case_variants_of_what_the_filter_reads() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"result":{"Tools":[{"name":"x"}]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"Name":"x"}]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":[]}"#,
        ] {
            let answer = read_message(text.as_bytes()).unwrap();
            assert!(ToolList::of(&answer).is_err(), "{text}");
        }
    }

    #[test]
    fn a_tool_list_is_filtered_in_place() {
        let text = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"},{"name":"b"},{"title":"c"}],"nextCursor":"n"}}"#;
        let mut answer = read_message(text.as_bytes()).unwrap();
        let mut list = ToolList::of(&answer).unwrap().unwrap();
        assert_eq!(list.names().collect::<Vec<_>>(), ["a", "b"]);
        list.retain(|name| name == "b");
        list.write_into(&mut answer);
        let written: Value = serde_json::from_slice(&answer.to_bytes()).unwrap();
        assert_eq!(
            written,
            json!({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"b"}],"nextCursor":"n"}})
        );
        let error = read_message(br#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}"#);
        assert!(ToolList::of(&error.unwrap()).unwrap().is_none());
    }
}
