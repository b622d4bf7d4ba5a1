//! MCP protocol revisions spoken here and what differs between them on the wire.

/// Handshake-era revisions (initialize, sessions). 2026-07-28 (stateless) is not spoken yet:
/// a request at that version gets -32022 with this list, and mcp 2.x clients fall back to
/// `initialize`.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];

/// Transports spec 2025-06-18: a request without `MCP-Protocol-Version` is assumed to be 2025-03-26.
pub const ASSUMED_VERSION: &str = "2025-03-26";

pub fn is_supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}

/// JSON-RPC batches exist only in 2025-03-26; 2025-06-18 removed them.
pub fn allows_batches(version: &str) -> bool {
    version == "2025-03-26"
}
