//! MCP method names the gateway reads or sends.

pub const INITIALIZE: &str = "initialize";
pub const PING: &str = "ping";
pub const TOOLS_CALL: &str = "tools/call";
pub const TOOLS_LIST: &str = "tools/list";
/// Server-to-client: the gateway asks the user to approve a held call with it.
pub const ELICITATION_CREATE: &str = "elicitation/create";
pub const INITIALIZED: &str = "notifications/initialized";
pub const PROGRESS: &str = "notifications/progress";
pub const TOOLS_LIST_CHANGED: &str = "notifications/tools/list_changed";

const NOTIFICATION_PREFIX: &str = "notifications/";

/// MCP names every notification `notifications/…`.
pub fn is_notification(method: &str) -> bool {
    method.starts_with(NOTIFICATION_PREFIX)
}

/// Methods the gateway polices by name. A variant of one of them in other letter case is
/// refused rather than passed on as some other method (`read.rs`).
pub const POLICED: [&str; 12] = [
    INITIALIZE,
    PING,
    TOOLS_CALL,
    TOOLS_LIST,
    "resources/read",
    "resources/list",
    "resources/templates/list",
    "resources/subscribe",
    "prompts/get",
    "prompts/list",
    "completion/complete",
    "logging/setLevel",
];
