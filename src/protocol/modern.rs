//! MCP 2026-07-28, the per-request revision: no initialize and no session; every request carries
//! its protocol version, the client's capabilities and (optionally) its info in `params._meta`,
//! and mirrors its method and name in HTTP headers that must agree with the body.
//!
//! Words and rules are taken from the Python SDK 2.3 (`mcp/shared/inbound.py`, `mcp_types`), the
//! reference the 2026-07-28 clients and servers here are tested with.

use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Map, Value};

use super::{method, Message};

/// The per-request revision spoken here (`mcp_types.version.MODERN_PROTOCOL_VERSIONS`).
pub const VERSION: &str = "2026-07-28";

/// `params._meta` keys of the per-request envelope (basic spec, "Per-request protocol fields").
pub const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";
pub const CLIENT_CAPABILITIES_META: &str = "io.modelcontextprotocol/clientCapabilities";
pub const CLIENT_INFO_META: &str = "io.modelcontextprotocol/clientInfo";
/// A result's `_meta` key naming the server (what initialize's `serverInfo` was).
pub const SERVER_INFO_META: &str = "io.modelcontextprotocol/serverInfo";

/// Transports spec 2026-07-28: the request's method and name, mirrored as headers for
/// intermediaries that route without reading bodies.
pub const METHOD_HEADER: HeaderName = HeaderName::from_static("mcp-method");
pub const NAME_HEADER: HeaderName = HeaderName::from_static("mcp-name");
/// `Mcp-Param-<token>`: a tool argument annotated `x-mcp-header` in the tool's input schema.
pub const PARAM_HEADER_PREFIX: &str = "mcp-param-";

pub const SERVER_DISCOVER: &str = "server/discover";
pub const SUBSCRIPTIONS_LISTEN: &str = "subscriptions/listen";

/// `resultType` of a result that is the request's answer; `input_required` asks the client to
/// fulfil `inputRequests` and retry the request with `inputResponses` and `requestState`.
pub const RESULT_COMPLETE: &str = "complete";
pub const RESULT_INPUT_REQUIRED: &str = "input_required";

/// Multi round-trip requests (SEP-2322): an input-required result's `inputRequests` (key to
/// embedded request) and opaque `requestState`; the retried request's `inputResponses` (key to
/// the client's result) and the state echoed back.
pub const INPUT_REQUESTS: &str = "inputRequests";
pub const INPUT_RESPONSES: &str = "inputResponses";
pub const REQUEST_STATE: &str = "requestState";

/// The answer to request `id` asking the client to fulfil `request` (`{"method", "params"}`)
/// under `key` and retry with `state`.
pub fn input_required(id: Option<&Value>, key: &str, request: Value, state: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": {
        "resultType": RESULT_INPUT_REQUIRED,
        INPUT_REQUESTS: { key: request },
        REQUEST_STATE: state,
    }})
}

/// Methods whose result may be input-required (SEP-2322): only their retries carry answers.
pub fn takes_input(method: &str) -> bool {
    matches!(
        method,
        method::TOOLS_CALL | "prompts/get" | "resources/read"
    )
}

/// The client capability that lets a server send `method` to it (as an embedded input
/// request at 2026-07-28, on a stream before).
pub fn capability_for(method: &str) -> Option<&'static str> {
    match method {
        method::ELICITATION_CREATE => Some("elicitation"),
        method::SAMPLING_CREATE_MESSAGE => Some("sampling"),
        method::ROOTS_LIST => Some("roots"),
        _ => None,
    }
}

/// The key in `-32022`'s `data` that lists the revisions a server speaks, and `server/discover`'s.
pub const SUPPORTED_VERSIONS: &str = "supportedVersions";

/// Methods whose params name what they act on, mirrored as `Mcp-Name`.
pub fn name_key(method: &str) -> Option<&'static str> {
    match method {
        method::TOOLS_CALL | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// Results a 2026-07-28 client may cache: they carry `ttlMs` and `cacheScope`.
pub fn is_cacheable(method: &str) -> bool {
    matches!(
        method,
        method::TOOLS_LIST
            | "prompts/list"
            | "resources/list"
            | "resources/templates/list"
            | SERVER_DISCOVER
    )
}

/// What a 2026-07-28 request says about its client, read from `params._meta`.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub version: String,
    pub capabilities: Value,
    pub client_info: Option<Value>,
    /// The request's `Mcp-Param-*` headers, checked against the arguments once the tool's
    /// annotations are known (`exchange/param_headers.rs`).
    pub params: HeaderMap,
}

impl Envelope {
    /// The client can be asked to elicit (an approval's question, an upstream's form).
    pub fn elicits(&self) -> bool {
        self.declares("elicitation")
    }

    /// The client declared `capability` in its envelope.
    pub fn declares(&self, capability: &str) -> bool {
        self.capabilities
            .get(capability)
            .is_some_and(|c| !c.is_null())
    }
}

/// Why a 2026-07-28 request was refused before anything was policed or forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// -32602: `_meta` lacks the envelope, or its version is not a string.
    #[error("{0}")]
    Invalid(String),
    /// -32020: the headers say something else than the body.
    #[error("{0}")]
    HeaderMismatch(String),
    /// -32022: a per-request revision not spoken here.
    #[error("unsupported protocol version {0:?}")]
    Unsupported(String),
}

/// Does this message ask for the per-request revision? Its version header says so, or, without
/// one and outside any session, its body's envelope does (the header rung then refuses it as a
/// mismatch). The body is read only in that last case: it is off every session's call path.
pub fn is_requested(headers: &HeaderMap, message: &super::Message) -> bool {
    match headers.get(super::headers::PROTOCOL_VERSION) {
        Some(value) => value.as_bytes() == VERSION.as_bytes(),
        None if headers.contains_key(super::headers::SESSION_ID)
            || message.is(method::INITIALIZE) =>
        {
            false
        }
        None => message
            .params()
            .and_then(|p| p.get("_meta")?.get(PROTOCOL_VERSION_META).cloned())
            .is_some(),
    }
}

/// The validation ladder of `mcp/shared/inbound.py::classify_inbound_request`, first failure
/// wins: the envelope is present, the routing headers agree with the body (and come once), the
/// version is one spoken. Policy decides on the body; these checks only keep an intermediary
/// that routes on headers from being told one thing while the upstream is told another.
pub fn check(
    headers: &HeaderMap,
    method: &str,
    params: Option<&Value>,
) -> Result<Envelope, EnvelopeError> {
    let meta = params
        .and_then(|p| p.get("_meta"))
        .and_then(Value::as_object)
        .ok_or_else(|| {
            EnvelopeError::Invalid(format!(
                "params._meta must be an object carrying {PROTOCOL_VERSION_META:?} and {CLIENT_CAPABILITIES_META:?}"
            ))
        })?;
    let missing: Vec<&str> = [PROTOCOL_VERSION_META, CLIENT_CAPABILITIES_META]
        .into_iter()
        .filter(|key| !meta.contains_key(*key))
        .collect();
    if !missing.is_empty() {
        return Err(EnvelopeError::Invalid(format!(
            "params._meta is missing the required envelope key(s): {}",
            missing.join(", ")
        )));
    }
    check_headers(headers, method, params, meta)?;
    let version = match &meta[PROTOCOL_VERSION_META] {
        Value::String(version) => version.clone(),
        _ => {
            return Err(EnvelopeError::Invalid(
                "the protocol-version envelope value must be a string".into(),
            ))
        }
    };
    if version != VERSION {
        return Err(EnvelopeError::Unsupported(version));
    }
    Ok(Envelope {
        version,
        capabilities: meta[CLIENT_CAPABILITIES_META].clone(),
        client_info: meta.get(CLIENT_INFO_META).cloned(),
        params: headers
            .iter()
            .filter(|(name, _)| name.as_str().starts_with(PARAM_HEADER_PREFIX))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
    })
}

fn check_headers(
    headers: &HeaderMap,
    method: &str,
    params: Option<&Value>,
    meta: &Map<String, Value>,
) -> Result<(), EnvelopeError> {
    let mismatch = |what: String| Err(EnvelopeError::HeaderMismatch(what));
    let version_header = super::headers::PROTOCOL_VERSION;
    for name in [&version_header, &METHOD_HEADER, &NAME_HEADER] {
        if headers.get_all(name).iter().count() > 1 {
            return mismatch(format!("the {name} header was sent more than once"));
        }
    }
    let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if text(&version_header).map(Value::from).as_ref() != meta.get(PROTOCOL_VERSION_META) {
        return mismatch(format!(
            "the {version_header} header does not match the request envelope's protocol version"
        ));
    }
    if text(&METHOD_HEADER) != Some(method) {
        return mismatch(format!(
            "the {METHOD_HEADER} header does not match the request body's method"
        ));
    }
    if let Some(key) = name_key(method) {
        let body = params.and_then(|p| p.get(key)).filter(|v| !v.is_null());
        if let Some(body) = body {
            let header = text(&NAME_HEADER).and_then(decode_header_value);
            if header.map(Value::from).as_ref() != Some(body) {
                return mismatch(format!(
                    "the {NAME_HEADER} header does not match the request body's {key:?} parameter"
                ));
            }
        }
    }
    Ok(())
}

/// The routing headers of a request the gateway sends to a 2026-07-28 upstream, written from the
/// message it sends (the one policy evaluated), never copied from what the agent sent.
#[derive(Debug, Clone)]
pub struct Routing {
    /// `None` when the method is not header text: the upstream then refuses the request as a
    /// header mismatch, which is relayed.
    pub method: Option<HeaderValue>,
    pub name: Option<HeaderValue>,
    /// A `tools/call`'s `Mcp-Param-*` headers, written from its arguments
    /// (`param_headers::ParamHeaders::headers_for`).
    pub params: Vec<(HeaderName, HeaderValue)>,
}

impl Routing {
    /// The routing of a request with no name and no parameters to mirror.
    pub fn bare(method: &'static str) -> Self {
        Self {
            method: Some(HeaderValue::from_static(method)),
            name: None,
            params: Vec::new(),
        }
    }

    pub fn of(message: &Message) -> Self {
        let method = message.method().unwrap_or_default();
        let name = name_key(method).and_then(|key| match message.tool_name() {
            Some(tool) if key == "name" => Some(tool.to_owned()),
            _ => message
                .params()
                .and_then(|p| p.get(key).and_then(Value::as_str).map(str::to_owned)),
        });
        Self {
            method: HeaderValue::from_str(method).ok(),
            name: name.and_then(|name| HeaderValue::from_str(&encode_header_value(&name)).ok()),
            params: Vec::new(),
        }
    }
}

/// `inbound.py::encode_header_value`: printable ASCII without edge whitespace goes as it is;
/// anything else (or text that looks like the sentinel) as `=?base64?…?=`.
pub fn encode_header_value(value: &str) -> String {
    let plain = value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && value.trim() == value
        && !(value.starts_with("=?base64?") && value.ends_with("?="));
    if plain {
        return value.to_owned();
    }
    let engine = base64::engine::general_purpose::STANDARD;
    format!("=?base64?{}?=", engine.encode(value))
}

/// The per-request envelope the gateway writes into `params._meta` when it speaks 2026-07-28
/// for a handshake-era client: the revision, and the capabilities and info it stands for.
pub fn envelope_meta(capabilities: Value, client_info: Value) -> Map<String, Value> {
    let mut meta = Map::new();
    meta.insert(PROTOCOL_VERSION_META.into(), VERSION.into());
    meta.insert(CLIENT_CAPABILITIES_META.into(), capabilities);
    meta.insert(CLIENT_INFO_META.into(), client_info);
    meta
}

/// A request the gateway sends on its own to a 2026-07-28 server.
pub fn own_request(id: &str, method: &str, params: Value) -> Value {
    let mut params = match params {
        Value::Object(params) => params,
        _ => Map::new(),
    };
    let info = json!({"name": "mcpgate", "version": env!("CARGO_PKG_VERSION")});
    params.insert("_meta".into(), envelope_meta(json!({}), info).into());
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// Does a `server/discover` result say the server speaks the per-request revision?
pub fn speaks_modern(discovered: &Value) -> bool {
    discovered
        .get(SUPPORTED_VERSIONS)
        .and_then(Value::as_array)
        .is_some_and(|versions| versions.iter().any(|v| v == VERSION))
}

/// `Mcp-Name` and `Mcp-Param-*` values that would not survive as header text are sent as
/// `=?base64?…?=` (`inbound.py::encode_header_value`). A malformed or non-canonical sentinel
/// decodes to nothing, so it never matches a body value by accident.
pub fn decode_header_value(value: &str) -> Option<String> {
    let Some(payload) = value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Some(value.to_owned());
    };
    let engine = base64::engine::general_purpose::STANDARD;
    let decoded = engine.decode(payload).ok()?;
    if engine.encode(&decoded) != payload {
        return None;
    }
    String::from_utf8(decoded).ok()
}

/// A result as a 2026-07-28 client reads it: `resultType` (servers of this revision MUST send
/// it), and the caching directives on lists: `ttlMs` 0 (immediately stale) unless a 2026-07-28
/// upstream set its own, and `cacheScope` private whatever it said, since what the gateway
/// relays is shaped by the caller's policy and no shared cache may serve it to another caller.
pub fn complete_result(result: &mut Map<String, Value>, method: &str) {
    result
        .entry("resultType")
        .or_insert_with(|| RESULT_COMPLETE.into());
    if is_cacheable(method) {
        result.entry("ttlMs").or_insert_with(|| 0.into());
        result.insert("cacheScope".into(), "private".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn call(name: &str) -> Value {
        json!({"name": name, "arguments": {}, "_meta": {
            PROTOCOL_VERSION_META: VERSION, CLIENT_CAPABILITIES_META: {"elicitation": {}},
            CLIENT_INFO_META: {"name": "t", "version": "1"}}})
    }

    #[test]
    fn agreeing_headers_pass_and_the_envelope_is_read() {
        let h = headers(&[
            ("mcp-protocol-version", VERSION),
            ("mcp-method", "tools/call"),
            ("mcp-name", "get_price"),
        ]);
        let envelope = check(&h, "tools/call", Some(&call("get_price"))).unwrap();
        assert_eq!(envelope.version, VERSION);
        assert!(envelope.elicits());
        assert_eq!(envelope.client_info.unwrap()["name"], "t");
    }

    #[test]
    fn a_header_that_disagrees_with_the_body_is_a_mismatch() {
        let cases = [
            vec![
                ("mcp-protocol-version", VERSION),
                ("mcp-method", "tools/call"),
                ("mcp-name", "get_ticker"),
            ],
            vec![
                ("mcp-protocol-version", VERSION),
                ("mcp-method", "tools/list"),
                ("mcp-name", "get_price"),
            ],
            vec![("mcp-method", "tools/call"), ("mcp-name", "get_price")],
            vec![
                ("mcp-protocol-version", VERSION),
                ("mcp-method", "tools/call"),
            ],
            vec![
                ("mcp-protocol-version", VERSION),
                ("mcp-method", "tools/call"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "get_price"),
            ],
        ];
        for case in cases {
            assert!(
                matches!(
                    check(&headers(&case), "tools/call", Some(&call("get_price"))),
                    Err(EnvelopeError::HeaderMismatch(_))
                ),
                "{case:?}"
            );
        }
    }

    #[test]
    fn a_missing_envelope_or_another_version_is_refused() {
        let h = headers(&[
            ("mcp-protocol-version", VERSION),
            ("mcp-method", "tools/list"),
        ]);
        assert!(matches!(
            check(&h, "tools/list", Some(&json!({}))),
            Err(EnvelopeError::Invalid(_))
        ));
        let h = headers(&[
            ("mcp-protocol-version", "2027-01-01"),
            ("mcp-method", "tools/list"),
        ]);
        let params =
            json!({"_meta": {PROTOCOL_VERSION_META: "2027-01-01", CLIENT_CAPABILITIES_META: {}}});
        assert_eq!(
            check(&h, "tools/list", Some(&params)),
            Err(EnvelopeError::Unsupported("2027-01-01".into()))
        );
    }

    #[test]
    fn base64_sentinels_decode_only_when_canonical() {
        assert_eq!(decode_header_value("plain").as_deref(), Some("plain"));
        assert_eq!(
            decode_header_value("=?base64?w6lsYW4=?=").as_deref(),
            Some("élan")
        );
        assert_eq!(decode_header_value("=?base64?w6lsYW5=?="), None);
        assert_eq!(decode_header_value("=?base64?***?="), None);
    }

    #[test]
    fn results_gain_their_type_and_lists_their_caching() {
        let mut list = Map::new();
        complete_result(&mut list, "tools/list");
        assert_eq!(
            Value::Object(list),
            json!({"resultType": "complete", "ttlMs": 0, "cacheScope": "private"})
        );
        let mut call = json!({"resultType": "input_required"})
            .as_object()
            .unwrap()
            .clone();
        complete_result(&mut call, "tools/call");
        assert_eq!(call["resultType"], "input_required");
        let mut shared = json!({"tools": [], "ttlMs": 5000, "cacheScope": "public"})
            .as_object()
            .unwrap()
            .clone();
        complete_result(&mut shared, "tools/list");
        assert_eq!(shared["ttlMs"], 5000);
        assert_eq!(shared["cacheScope"], "private");
    }

    #[test]
    fn header_values_are_encoded_only_when_they_would_not_survive() {
        assert_eq!(encode_header_value("get_price"), "get_price");
        for odd in ["élan", " padded", "=?base64?abc?=", "tab\there"] {
            let encoded = encode_header_value(odd);
            assert!(encoded.starts_with("=?base64?"), "{odd:?}");
            assert_eq!(decode_header_value(&encoded).as_deref(), Some(odd));
        }
    }

    #[test]
    fn routing_headers_are_written_from_the_message() {
        let message = |text: &str| match crate::protocol::parse_body(text.as_bytes()) {
            Ok(crate::protocol::Body::Single(message)) => message,
            _ => panic!("{text}"),
        };
        let call = Routing::of(&message(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"héllo"}}"#,
        ));
        assert_eq!(call.method.unwrap(), "tools/call");
        let name = call.name.unwrap();
        assert_eq!(
            decode_header_value(name.to_str().unwrap()).as_deref(),
            Some("héllo")
        );
        let read = Routing::of(&message(
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a"}}"#,
        ));
        assert_eq!(read.name.unwrap(), "file:///a");
        let list = Routing::of(&message(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        ));
        assert!(list.name.is_none());
    }
}
