//! MCP method names the gateway reads or sends.

pub const INITIALIZE: &str = "initialize";
pub const PING: &str = "ping";
pub const TOOLS_CALL: &str = "tools/call";
pub const TOOLS_LIST: &str = "tools/list";
/// Server-to-client: the gateway asks the user to approve a held call with it.
pub const ELICITATION_CREATE: &str = "elicitation/create";
/// Server-to-client, as a handshake-era upstream sends them during a call: relayed to a
/// 2026-07-28 client as an input-required round (`exchange/rounds.rs`).
pub const SAMPLING_CREATE_MESSAGE: &str = "sampling/createMessage";
pub const ROOTS_LIST: &str = "roots/list";
pub const INITIALIZED: &str = "notifications/initialized";
pub const CANCELLED: &str = "notifications/cancelled";
pub const PROGRESS: &str = "notifications/progress";
pub const ROOTS_LIST_CHANGED: &str = "notifications/roots/list_changed";
pub const TOOLS_LIST_CHANGED: &str = "notifications/tools/list_changed";
/// Server-to-client change notifications, relayed on a 2025-xx session's GET stream and on a
/// 2026-07-28 `subscriptions/listen` stream (`protocol/listen.rs`).
pub const PROMPTS_LIST_CHANGED: &str = "notifications/prompts/list_changed";
pub const RESOURCES_LIST_CHANGED: &str = "notifications/resources/list_changed";
pub const RESOURCES_UPDATED: &str = "notifications/resources/updated";
/// What a handshake-era client sends to be told of one resource's updates.
pub const RESOURCES_SUBSCRIBE: &str = "resources/subscribe";

/// The notifications an MCP client sends (schema 2025-06-18, `ClientNotification`); they pass
/// without a rule. Only what JSON-RPC calls a notification (no `id`) is one: a message with a
/// `method` and an `id` is a request whatever its name. Any other notification needs a rule
/// under the policy's `methods`.
pub const CLIENT_NOTIFICATIONS: [&str; 4] = [INITIALIZED, CANCELLED, PROGRESS, ROOTS_LIST_CHANGED];

pub fn is_client_notification(method: &str) -> bool {
    CLIENT_NOTIFICATIONS.contains(&method)
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
    RESOURCES_SUBSCRIBE,
    "prompts/get",
    "prompts/list",
    "completion/complete",
    "logging/setLevel",
];
