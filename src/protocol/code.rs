//! JSON-RPC 2.0 error codes, and the MCP and implementation-defined ones this gateway answers
//! with. Which failure gets which code is decided in one place, `transport/error.rs`.

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Implementation-defined server errors (-32000 to -32099).
pub const UPSTREAM_UNAVAILABLE: i64 = -32000;
pub const SESSION_NOT_FOUND: i64 = -32001;
pub const POLICY_DENIED: i64 = -32003;
pub const UNAUTHORIZED: i64 = -32004;
pub const OVERLOADED: i64 = -32005;
/// MCP 2026-07-28: the request's protocol version is not supported.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
/// MCP 2026-07-28: an `Mcp-Method`, `Mcp-Name` or `MCP-Protocol-Version` header that does not
/// match the request's body.
pub const HEADER_MISMATCH: i64 = -32020;
/// MCP 2026-07-28: the server needs a client capability the request's client lacks.
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
