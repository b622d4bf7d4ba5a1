//! What each fuzz target checks, one public function per target.
//!
//! Shared by the libFuzzer binaries in `fuzz_targets/` and by `tests/fuzz_regressions.rs`, which
//! includes this file with `#[path]` and runs every kept input through the same function: an input
//! that once crashed a target is a plain test case afterwards, with no libFuzzer needed. So this
//! file uses only `mcpgate`, `serde`, `serde_json`, `bytes`, `futures` and std (all of them the
//! gateway's own dependencies).
//!
//! Each function must return for every input. Beyond "no panic", each asserts a property the
//! gateway relies on; a failed assertion is a crash to the fuzzer, like any other panic.

use std::convert::Infallible;
use std::fmt;
use std::sync::LazyLock;

use bytes::Bytes;
use bytestring::ByteString;
use futures::StreamExt;
use mcpgate::json::{self, StrictJsonError};
use mcpgate::policy::{Call, CompiledPolicy, Decision};
use mcpgate::protocol::from_upstream::{self, ToolList};
use mcpgate::protocol::{self, method, Body, Kind, Message, MessageError};
use mcpgate::upstream::sse;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A fixed policy that uses every kind of rule and a spread of JSON Schema keywords (pattern,
/// format, $ref, oneOf, if/then, unevaluatedProperties), so that fuzzed arguments meet them.
const DECIDE_POLICY: &[u8] = include_bytes!("../policies/decide.json");

/// `decide.json`'s agent sections: "admin" (default allow), "bot" (no default of its own).
const AGENTS: [&str; 2] = ["admin", "bot"];

/// `InvalidArguments` reasons are cut at 1024 bytes, then "…" (3 bytes) is appended.
const MAX_REASON_BYTES: usize = 1024 + '…'.len_utf8();

static POLICY: LazyLock<CompiledPolicy> = LazyLock::new(|| {
    CompiledPolicy::from_json_slice(DECIDE_POLICY)
        .unwrap_or_else(|errors| panic!("fuzz/policies/decide.json does not load:\n{errors}"))
});

/// Target `message`: a POST body, as an agent sends it.
///
/// - `json::parse` agrees with `serde_json` except that it refuses duplicate keys, and
///   `json::scan::check` with `json::parse` (the same refusals, for the same reasons);
/// - `parse_body` maps JSON errors the way the transport answers them;
/// - each classified message is well-formed for its kind, and forwarding it is canonical:
///   `to_bytes()` is the value received, and parses back to the same classification, value
///   and bytes;
/// - the fixed policy decides each message without panicking.
pub fn message(data: &[u8]) {
    let strict = strict_json(data);
    let loose_ok = serde_json::from_slice::<Value>(data).is_ok();
    let body = protocol::parse_body(data);
    match (&strict, &body) {
        (Ok(_), Err(MessageError::Parse(error))) => {
            panic!("parse_body called strict JSON a parse error: {error}")
        }
        (Err(json_error), Ok(_)) => {
            panic!("parse_body accepted what json::parse refused: {json_error:?}")
        }
        // A document with a duplicate key and a syntax error may be refused for either.
        (Err(_), Err(MessageError::Parse(_) | MessageError::Invalid(_))) if !loose_ok => {}
        (Err(StrictJsonError::DuplicateKey(_)), Err(MessageError::Invalid(_))) => {}
        (Err(json_error), Err(body_error)) => {
            panic!("json::parse said {json_error:?} but parse_body said {body_error:?}")
        }
        (Ok(_), _) => {}
    }
    let messages = match body {
        Ok(Body::Single(message)) => vec![message],
        Ok(Body::Batch(messages)) => {
            assert!(!messages.is_empty(), "an empty batch was accepted");
            messages
        }
        Err(_) => return,
    };
    let received = match strict {
        Ok(Value::Array(items)) => items,
        Ok(value) => vec![value],
        Err(error) => panic!("parse_body accepted what json::parse refused: {error:?}"),
    };
    assert_eq!(
        messages.len(),
        received.len(),
        "a batch lost or gained messages"
    );
    for (message, received) in messages.iter().zip(&received) {
        check_envelope(message);
        check_forwarding(message, received);
        decide_message(message);
    }
}

/// `json::parse` against `serde_json::from_slice`: same value when both accept; strict refuses
/// only for a syntax error both see, or for a duplicate key.
fn strict_json(data: &[u8]) -> Result<Value, StrictJsonError> {
    let strict = json::parse(data);
    let loose = serde_json::from_slice::<Value>(data);
    match (&strict, &loose) {
        (Ok(strict), Ok(loose)) => assert_eq!(strict, loose, "json::parse and serde_json differ"),
        (Ok(_), Err(error)) => panic!("json::parse accepted what serde_json refuses: {error}"),
        (Err(StrictJsonError::Syntax(error)), Ok(_)) => {
            panic!("json::parse called valid JSON a syntax error: {error}")
        }
        (Err(StrictJsonError::DuplicateKey(key)), Ok(_)) => assert!(
            all_keys(data).contains(key),
            "json::parse named duplicate key {key:?}, which the document does not have"
        ),
        (Err(_), Err(_)) => {}
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let scanned = json::scan::check(text);
        match (&strict, &scanned) {
            (Ok(_), Ok(()))
            | (Err(StrictJsonError::Syntax(_)), Err(StrictJsonError::Syntax(_))) => {}
            (Err(StrictJsonError::DuplicateKey(a)), Err(StrictJsonError::DuplicateKey(b)))
                if a == b => {}
            _ => panic!("json::scan::check said {scanned:?}, json::parse {strict:?}"),
        }
    }
    strict
}

/// Every object key in `data`, at any depth, repeats included. (A `Value` will not do: it keeps
/// the last of repeated keys only, and drops with the others whatever they held, a duplicate key
/// inside them included: `regressions/message/duplicate-inside-a-dropped-duplicate.json`.)
fn all_keys(data: &[u8]) -> Vec<String> {
    let mut keys = Vec::new();
    let mut reader = serde_json::Deserializer::from_slice(data);
    let _ = AllKeys(&mut keys).deserialize(&mut reader);
    keys
}

struct AllKeys<'a>(&'a mut Vec<String>);

impl<'de> DeserializeSeed<'de> for AllKeys<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AllKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(AllKeys(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            self.0.push(key);
            map.next_value_seed(AllKeys(&mut *self.0))?;
        }
        Ok(())
    }
}

fn forwarded(message: &Message) -> Value {
    serde_json::from_slice(&message.to_bytes()).expect("forwarded bytes are JSON")
}

fn check_envelope(message: &Message) {
    let forwarded = forwarded(message);
    assert_eq!(forwarded.get("jsonrpc"), Some(&Value::from("2.0")));
    if let Some(id) = message.id() {
        assert!(id.is_string() || id.is_i64() || id.is_u64(), "id {id}");
    }
    match &message.kind {
        Kind::Request => {
            assert!(message.id().is_some(), "a request without an id");
            assert!(message.method().is_some(), "a request without a method");
        }
        Kind::Notification => {
            assert!(message.id().is_none(), "a notification with an id");
            assert!(
                message.method().is_some(),
                "a notification without a method"
            );
        }
        Kind::Response => {
            assert!(message.id().is_some() && message.method().is_none());
        }
    }
    assert_eq!(
        message.method(),
        forwarded.get("method").and_then(Value::as_str),
        "the classified method is not the one the upstream will read"
    );
    if let Some(params) = forwarded.get("params") {
        assert!(params.is_object() || params.is_array(), "params {params}");
    }
    if message.method() == Some("tools/call") {
        assert!(
            message.tool_name().is_some(),
            "tools/call without a string name"
        );
        if let Some(arguments) = message.tool_arguments() {
            assert!(arguments.is_object(), "tools/call arguments {arguments}");
        }
    }
    let _ = message.progress_token();
}

/// Canonical forwarding (issue 5): the upstream reads exactly the value that was received and
/// evaluated.
fn check_forwarding(message: &Message, received: &Value) {
    assert_eq!(
        &forwarded(message),
        received,
        "forwarding changed the value"
    );
    let bytes = message.to_bytes();
    let again = match protocol::parse_body(&bytes) {
        Ok(Body::Single(again)) => again,
        other => panic!(
            "forwarded bytes {:?} do not parse back to one message: {other:?}",
            String::from_utf8_lossy(&bytes)
        ),
    };
    assert_eq!(
        again.kind, message.kind,
        "forwarding changed the classification"
    );
    assert_eq!(
        forwarded(&again),
        *received,
        "forwarding twice changed the value"
    );
    assert_eq!(again.to_bytes(), bytes, "forwarding is not stable");
    assert_eq!(again.tool_name(), message.tool_name());
    assert_eq!(again.tool_arguments(), message.tool_arguments());
}

/// What the gateway does next with a message (`gateway.rs`): one `Call` per request.
fn decide_message(message: &Message) {
    let Some(method) = message.method() else {
        return;
    };
    for agent in [None, Some(AGENTS[0]), Some(AGENTS[1])] {
        let call = Call {
            agent,
            method,
            tool: message.tool_name(),
            arguments: message.tool_arguments(),
        };
        check_decision(&POLICY, &call, true);
        if message.kind == Kind::Notification {
            check_notification(&call);
        }
    }
}

/// A notification (no `id`) passes without a rule only when it is one of MCP's client
/// notifications; any other is decided by the rules, as a request of that method would be.
fn check_notification(call: &Call<'_>) {
    let decision = POLICY.decide_notification(call);
    if method::is_client_notification(call.method) {
        assert_eq!(decision, Decision::Lifecycle, "{:?}", call.method);
        return;
    }
    assert_ne!(decision, Decision::Lifecycle, "{:?}", call.method);
    if !is_lifecycle_request(call.method) {
        assert_eq!(decision, POLICY.decide(call), "{:?}", call.method);
    }
}

/// Requests that pass without a rule; a message with an `id` is a request, whatever its name.
fn is_lifecycle_request(method: &str) -> bool {
    matches!(method, "initialize" | "ping" | "tools/list")
}

/// Target `policy_load`: a policy file. A file that loads is asked about every tool, method and
/// agent it names (and a few it does not); one that fails gives at least one located error.
pub fn policy_load(data: &[u8]) {
    let policy = match CompiledPolicy::from_json_slice(data) {
        Ok(policy) => policy,
        Err(errors) => {
            assert!(
                !errors.0.is_empty(),
                "a policy failed to load with no error"
            );
            for error in &errors.0 {
                assert!(
                    error.path.is_empty() || error.path.starts_with('/'),
                    "error path {:?} is not a JSON pointer",
                    error.path
                );
            }
            assert!(!errors.to_string().is_empty());
            return;
        }
    };
    let file = json::parse(data).expect("a policy that loaded is strict JSON");
    let mut agents: Vec<Option<&str>> = vec![None, Some("no such agent")];
    let mut sections = vec![&file];
    if let Some(named) = file.get("agents").and_then(Value::as_object) {
        for (name, section) in named.iter().take(4) {
            agents.push(Some(name));
            sections.push(section);
        }
    }
    let mut methods: Vec<&str> = vec!["resources/read", "prompts/get", "ping", "notifications/x"];
    for section in sections {
        if let Some(rules) = section.get("methods").and_then(Value::as_object) {
            methods.extend(rules.keys().take(8).map(String::as_str));
        }
    }
    let mut tools: Vec<&str> = policy.tool_rule_names().take(16).collect();
    tools.extend(["", "unlisted"]);
    let fixed = [
        Value::Object(Default::default()),
        serde_json::json!({"symbol": "BTCUSDT", "depth": 5, "query": "x", "amount": 1}),
    ];
    let mut arguments: Vec<Option<&Value>> = vec![None, Some(&fixed[0]), Some(&fixed[1])];
    // Instances the fuzzer controls: the `examples` of each top-level argument schema (a keyword
    // that does not affect validation), so that fuzzed schemas meet fuzzed values.
    let examples = file
        .get("tools")
        .and_then(Value::as_object)
        .into_iter()
        .flatten();
    let examples = examples.filter_map(|(_, rule)| rule.pointer("/arguments/examples")?.as_array());
    arguments.extend(examples.flatten().take(4).map(Some));
    for agent in agents {
        for &tool in &tools {
            for &args in &arguments {
                let call = Call {
                    agent,
                    method: "tools/call",
                    tool: Some(tool),
                    arguments: args,
                };
                check_decision(&policy, &call, false);
            }
        }
        for &method in &methods {
            let call = Call {
                agent,
                method,
                tool: None,
                arguments: None,
            };
            check_decision(&policy, &call, false);
        }
    }
}

/// Target `policy_decide`: the fixed policy (`fuzz/policies/decide.json`) asked about one call,
/// written as lines so that kept inputs are readable:
///
/// ```text
/// AGENT      (empty: no agent)
/// METHOD     (empty: tools/call)
/// TOOL       (line absent: no params.name)
/// ARGUMENTS  (the rest, strict JSON; absent or not JSON: no arguments)
/// ```
pub fn policy_decide(data: &[u8]) {
    let mut lines = data.splitn(4, |&b| b == b'\n');
    let Ok(agent) = std::str::from_utf8(lines.next().unwrap_or_default()) else {
        return;
    };
    let Ok(method) = std::str::from_utf8(lines.next().unwrap_or_default()) else {
        return;
    };
    let tool = match lines.next().map(std::str::from_utf8) {
        Some(Ok(tool)) => Some(tool),
        Some(Err(_)) => return,
        None => None,
    };
    let arguments = lines.next().and_then(|rest| json::parse(rest).ok());
    let call = Call {
        agent: (!agent.is_empty()).then_some(agent),
        method: if method.is_empty() {
            "tools/call"
        } else {
            method
        },
        tool,
        arguments: arguments.as_ref(),
    };
    check_decision(&POLICY, &call, true);
    // A name that is not exactly an agent section's is no agent at all: "Admin", "admin ".
    if let Some(agent) = call.agent.filter(|agent| !AGENTS.contains(agent)) {
        let anonymous = Call {
            agent: None,
            ..call
        };
        assert_eq!(
            POLICY.decide(&call),
            POLICY.decide(&anonymous),
            "agent {agent:?} is treated as an agent section"
        );
    }
}

/// Properties of one decision that hold for every policy; `fixed` adds those that hold for
/// `decide.json` (default deny; only "admin" relaxes it).
fn check_decision(policy: &CompiledPolicy, call: &Call<'_>, fixed: bool) {
    let decision = policy.decide(call);
    assert_eq!(decision, policy.decide(call), "decide is not deterministic");
    let _ = policy.explain(call);
    let lifecycle = is_lifecycle_request(call.method);
    assert_eq!(
        lifecycle,
        decision == Decision::Lifecycle,
        "method {:?} decided {decision:?}",
        call.method
    );
    if let Decision::InvalidArguments { reason, .. } = &decision {
        assert!(!reason.is_empty(), "invalid arguments with no reason");
        assert!(
            reason.len() <= MAX_REASON_BYTES,
            "reason of {} bytes",
            reason.len()
        );
    }
    if lifecycle || call.method != "tools/call" {
        if fixed && call.agent != Some("admin") && !matches!(decision, Decision::Lifecycle) {
            let allowed = matches!(decision, Decision::Allow { .. });
            assert_eq!(
                allowed,
                call.method == "resources/read",
                "method {:?} decided {decision:?}",
                call.method
            );
        }
        return;
    }
    let Some(tool) = call.tool else {
        assert_eq!(decision, Decision::UnknownTool, "tools/call without a name");
        return;
    };
    // tools/list must list exactly the tools a call could run (or wait for approval of).
    let runnable = matches!(
        decision,
        Decision::Allow { .. } | Decision::Approval { .. } | Decision::InvalidArguments { .. }
    );
    assert_eq!(
        policy.tool_visible(call.agent, tool),
        runnable,
        "tools/list and tools/call disagree on {tool:?} for {:?}: {decision:?}",
        call.agent
    );
    // Names match exactly: under default deny, only a tool with a rule of that very name can be
    // anything but unknown.
    if fixed && call.agent != Some("admin") && decision != Decision::UnknownTool {
        assert!(
            policy.tool_rule_names().any(|name| name == tool),
            "tool {tool:?} has no rule but was decided {decision:?}"
        );
    }
}

/// The one tool the `upstream_answer` checks let a filtered `tools/list` answer keep.
const VISIBLE: &str = "get_price";

/// Past this an upstream's SSE event is refused (small, so that fuzzed streams reach it).
const MAX_EVENT_BYTES: usize = 1024;

/// Target `upstream_answer`: what an upstream sends, first as a JSON answer body, then (past the
/// first byte, which picks a chunk size of 1 to 64) as an SSE stream cut into chunks.
///
/// - the strict upstream reader accepts only strict JSON objects, and relays canonically: what
///   the gateway writes parses to the value received, and a body relayed as it came is exactly
///   what the gateway would write; a message is a request, a notification or
///   a response, never two;
/// - a `tools/list` answer, once filtered, shows no other tool than the one kept to a client that
///   reads member names in any letter case, and still reads strictly;
/// - the SSE reader bounds every event, and cutting the stream into chunks changes no event;
///   each event's data goes through the checks above.
pub fn upstream_answer(data: &[u8]) {
    upstream_message(data);
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let chunked = sse_events(stream, 1 + usize::from(first % 64));
    let whole = sse_events(stream, stream.len().max(1));
    assert_eq!(chunked, whole, "chunking changed the events");
    for event in chunked.into_iter().flatten() {
        assert!(
            event.len() <= MAX_EVENT_BYTES,
            "an event of {} bytes",
            event.len()
        );
        upstream_message(event.as_bytes());
    }
}

/// Each event's data (or the error that ended the stream), the stream cut every `chunk` bytes.
fn sse_events(stream: &[u8], chunk: usize) -> Vec<Result<String, String>> {
    let chunks: Vec<Result<Bytes, Infallible>> = stream
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let events = sse::events(futures::stream::iter(chunks), MAX_EVENT_BYTES).map(|event| {
        event
            .map(|e| e.data.map(String::from).unwrap_or_default())
            .map_err(|e| e.to_string())
    });
    futures::executor::block_on(events.collect())
}

fn upstream_message(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    let Ok(mut message) = from_upstream::read_message(&body) else {
        return;
    };
    assert_eq!(
        message.to_bytes_from(&body),
        message.to_bytes(),
        "an answer relayed as it came is not what the gateway writes"
    );
    if let Ok(text) = std::str::from_utf8(data) {
        let text = ByteString::from(text);
        let event = from_upstream::read_message_text(&text).expect("read as text, it is refused");
        assert_eq!(
            event.to_text_from(&text).as_bytes(),
            &message.to_bytes(),
            "an event relayed as it came is not what the gateway writes"
        );
    }
    let received =
        json::parse(data).expect("the upstream reader accepted what json::parse refuses");
    assert!(received.is_object(), "a message that is not an object");
    let relayed: Value =
        serde_json::from_slice(&message.to_bytes()).expect("relayed bytes are JSON");
    assert_eq!(relayed, received, "relaying changed the value");
    let answers = received.get("result").is_some() || received.get("error").is_some();
    assert_eq!(message.kind == Kind::Response, answers, "{received}");
    assert_eq!(message.method().is_some(), !answers, "{received}");
    match ToolList::of(&message) {
        Ok(Some(mut list)) => {
            list.retain(|name| name == VISIBLE);
            list.write_into(&mut message);
            let bytes = message.to_bytes();
            let filtered: Value = serde_json::from_slice(&bytes).expect("filtered bytes are JSON");
            assert_shows_only_the_visible_tool(&filtered);
            let again =
                from_upstream::read_message(&bytes).expect("a filtered answer reads strictly");
            assert!(
                matches!(ToolList::of(&again), Ok(Some(_))),
                "a filtered list does not read back"
            );
        }
        Ok(None) => assert!(received.get("error").is_some(), "no list in {received}"),
        Err(_) => {}
    }
}

/// What a client that matches member names in any letter case reads as `result.tools[].name`.
fn assert_shows_only_the_visible_tool(answer: &Value) {
    for result in members_like(answer, "result") {
        for tools in members_like(result, "tools") {
            for tool in tools.as_array().into_iter().flatten() {
                for name in members_like(tool, "name") {
                    assert_eq!(name, VISIBLE, "a filtered list shows {name}");
                }
            }
        }
    }
}

fn members_like<'a>(value: &'a Value, key: &'a str) -> impl Iterator<Item = &'a Value> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter(move |(name, _)| json::same_key(name, key))
        .map(|(_, value)| value)
}
