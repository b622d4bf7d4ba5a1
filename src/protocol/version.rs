//! MCP protocol revisions spoken here and what differs between them on the wire.

/// Handshake-era revisions (initialize, sessions), oldest first. 2026-07-28 (stateless) is not
/// spoken yet: a request at that version gets -32022 with this list, and mcp 2.x clients fall
/// back to `initialize`.
pub const SUPPORTED: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];

/// The newest revision spoken: what the gateway asks for when it is the client.
pub const LATEST: &str = SUPPORTED[SUPPORTED.len() - 1];

/// Transports spec 2025-06-18: a request without `MCP-Protocol-Version` is assumed to be 2025-03-26.
pub const ASSUMED: &str = "2025-03-26";

/// The revision named by `requested` (a header's bytes), if it is one spoken here.
pub fn spoken(requested: &[u8]) -> Option<&'static str> {
    SUPPORTED
        .into_iter()
        .find(|version| version.as_bytes() == requested)
}

/// JSON-RPC batches exist only in 2025-03-26; 2025-06-18 removed them.
pub fn allows_batches(version: &str) -> bool {
    version == "2025-03-26"
}
