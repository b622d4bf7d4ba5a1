//! `subscriptions/listen` (MCP 2026-07-28, SEP-2575): the request whose answer is a stream of
//! change notifications, in place of a session's GET stream. Its `params.notifications` (a
//! `SubscriptionFilter`) says what the client opts in to; the server acknowledges the subset it
//! honours first (`notifications/subscriptions/acknowledged`), stamps every frame with the
//! listen request's id (`_meta["io.modelcontextprotocol/subscriptionId"]`), never sends a kind
//! the client did not ask for, and ends gracefully with the request's result.
//!
//! Words and shapes are the Python SDK 2.3's (`mcp/shared/subscriptions.py`, `mcp_types`).

use serde_json::{json, Map, Value};

use super::{method, modern};

/// The `_meta` key on every frame of a listen stream: the listen request's JSON-RPC id.
pub const SUBSCRIPTION_ID_META: &str = "io.modelcontextprotocol/subscriptionId";
/// The first frame of a listen stream: the filter the server honours.
pub const ACKNOWLEDGED: &str = "notifications/subscriptions/acknowledged";

/// `SubscriptionFilter`'s keys.
const TOOLS_LIST_CHANGED: &str = "toolsListChanged";
const PROMPTS_LIST_CHANGED: &str = "promptsListChanged";
const RESOURCES_LIST_CHANGED: &str = "resourcesListChanged";
const RESOURCE_SUBSCRIPTIONS: &str = "resourceSubscriptions";

/// What one listen stream carries: the kinds of change opted in to, and the resources whose
/// updates are wanted. Kinds this gateway does not know (an extension's `taskIds`) are not
/// kept, so they are never acknowledged nor sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
    pub uris: Vec<String>,
}

impl Subscription {
    /// What a listen request's params ask for; anything that is not `true` (or a string URI)
    /// asks for nothing.
    pub fn requested(params: Option<&Value>) -> Self {
        let filter = params.and_then(|p| p.get("notifications"));
        let flag = |key: &str| filter.and_then(|f| f.get(key)) == Some(&Value::Bool(true));
        let uris = filter
            .and_then(|f| f.get(RESOURCE_SUBSCRIPTIONS))
            .and_then(Value::as_array)
            .map(|uris| {
                let mut kept: Vec<String> = Vec::new();
                for uri in uris.iter().filter_map(Value::as_str) {
                    if !kept.iter().any(|k| k == uri) {
                        kept.push(uri.to_owned());
                    }
                }
                kept
            })
            .unwrap_or_default();
        Self {
            tools: flag(TOOLS_LIST_CHANGED),
            prompts: flag(PROMPTS_LIST_CHANGED),
            resources: flag(RESOURCES_LIST_CHANGED),
            uris,
        }
    }

    /// The filter as the acknowledgment writes it: true flags only, the URIs only when some
    /// (the Python SDK's `_honored_subset`).
    pub fn filter(&self) -> Value {
        let mut filter = Map::new();
        for (key, on) in [
            (TOOLS_LIST_CHANGED, self.tools),
            (PROMPTS_LIST_CHANGED, self.prompts),
            (RESOURCES_LIST_CHANGED, self.resources),
        ] {
            if on {
                filter.insert(key.into(), true.into());
            }
        }
        if !self.uris.is_empty() {
            filter.insert(RESOURCE_SUBSCRIPTIONS.into(), json!(self.uris));
        }
        Value::Object(filter)
    }

    /// Does this stream carry the notification `method` with `params`? A resource update only
    /// for a URI subscribed to, exactly.
    pub fn admits(&self, method: &str, params: Option<&Value>) -> bool {
        match method {
            method::TOOLS_LIST_CHANGED => self.tools,
            method::PROMPTS_LIST_CHANGED => self.prompts,
            method::RESOURCES_LIST_CHANGED => self.resources,
            method::RESOURCES_UPDATED => params
                .and_then(|p| p.get("uri"))
                .and_then(Value::as_str)
                .is_some_and(|uri| self.uris.iter().any(|u| u == uri)),
            _ => false,
        }
    }
}

/// The first frame of the stream answering listen request `id`: what it honours.
pub fn acknowledged(id: &Value, honoured: &Subscription) -> Value {
    json!({"jsonrpc": "2.0", "method": ACKNOWLEDGED, "params": {
        "notifications": honoured.filter(),
        "_meta": {SUBSCRIPTION_ID_META: id},
    }})
}

/// `notification` as a frame of the stream answering listen request `id`. Whatever `_meta` the
/// upstream gave it stays; only the subscription id is the gateway's.
pub fn stamped(mut notification: Value, id: &Value) -> Value {
    if !notification["params"].is_object() {
        notification["params"] = json!({});
    }
    if !notification["params"]["_meta"].is_object() {
        notification["params"]["_meta"] = json!({});
    }
    notification["params"]["_meta"][SUBSCRIPTION_ID_META] = id.clone();
    notification
}

/// The last frame of a stream the server ends deliberately: the listen request's result
/// (`SubscriptionsListenResult`), which tells the client to listen again and refetch.
pub fn closed(id: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": {
        "_meta": {SUBSCRIPTION_ID_META: id},
        "resultType": modern::RESULT_COMPLETE,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_true_flags_and_string_uris_are_asked_for() {
        let params = json!({"notifications": {"toolsListChanged": true,
            "promptsListChanged": "yes", "resourcesListChanged": false,
            "resourceSubscriptions": ["file:///a", 7, "file:///b"], "taskIds": ["t"]}});
        let asked = Subscription::requested(Some(&params));
        assert_eq!(
            asked,
            Subscription {
                tools: true,
                prompts: false,
                resources: false,
                uris: vec!["file:///a".into(), "file:///b".into()],
            }
        );
        assert_eq!(
            asked.filter(),
            json!({"toolsListChanged": true, "resourceSubscriptions": ["file:///a", "file:///b"]})
        );
        assert_eq!(Subscription::requested(None).filter(), json!({}));
    }

    #[test]
    fn a_stream_admits_only_what_it_asked_for() {
        let asked = Subscription {
            tools: true,
            uris: vec!["file:///a".into()],
            ..Subscription::default()
        };
        assert!(asked.admits(method::TOOLS_LIST_CHANGED, None));
        assert!(!asked.admits(method::PROMPTS_LIST_CHANGED, None));
        assert!(asked.admits(
            method::RESOURCES_UPDATED,
            Some(&json!({"uri": "file:///a"}))
        ));
        assert!(!asked.admits(
            method::RESOURCES_UPDATED,
            Some(&json!({"uri": "file:///b"}))
        ));
        assert!(!asked.admits(method::RESOURCES_UPDATED, None));
        assert!(!asked.admits("notifications/message", None));
    }

    #[test]
    fn frames_carry_the_subscription_id() {
        let id = json!("listen-1");
        let note = stamped(
            json!({"jsonrpc": "2.0", "method": method::RESOURCES_UPDATED,
                "params": {"uri": "file:///a", "_meta": {"k": 1}}}),
            &id,
        );
        assert_eq!(note["params"]["_meta"][SUBSCRIPTION_ID_META], "listen-1");
        assert_eq!(note["params"]["_meta"]["k"], 1);
        let bare = stamped(
            json!({"jsonrpc": "2.0", "method": method::TOOLS_LIST_CHANGED}),
            &id,
        );
        assert_eq!(bare["params"]["_meta"][SUBSCRIPTION_ID_META], "listen-1");
        assert_eq!(
            closed(&id)["result"]["_meta"][SUBSCRIPTION_ID_META],
            "listen-1"
        );
        assert_eq!(
            acknowledged(&id, &Subscription::default())["params"]["notifications"],
            json!({})
        );
    }
}
