//! A server-sent event as MCP's HTTP transports carry messages in one.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
}

impl SseEvent {
    /// A JSON-RPC message of the gateway's own, as the transports spec sends them (`event: message`).
    pub fn message(data: String) -> Self {
        Self {
            event: Some("message".into()),
            data,
            ..Self::default()
        }
    }
}
