//! The HTTP headers MCP's transports define, as the gateway sends and reads them on both sides.

use http::HeaderName;

pub const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
pub const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// SSE resumption (HTML Living Standard, server-sent events): the last event id a client saw.
pub const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
