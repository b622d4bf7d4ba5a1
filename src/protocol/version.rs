//! MCP protocol revisions spoken here and what differs between them on the wire.

/// Handshake-era revisions (initialize, sessions), oldest first. 2026-07-28, the per-request
/// revision, is spoken too (`modern.rs`); a request at any other version gets -32022 with
/// [`ALL`].
pub const SUPPORTED: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];

/// Every revision spoken, oldest first: what a -32022 and `server/discover` name.
pub const ALL: [&str; 4] = [
    SUPPORTED[0],
    SUPPORTED[1],
    SUPPORTED[2],
    super::modern::VERSION,
];

/// The newest handshake-era revision spoken: what the gateway asks for when it is the client.
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
