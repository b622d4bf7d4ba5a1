//! A look at the envelope of a message the upstream sent (SSE event data), without parsing the
//! rest of it: is it an answer, and to which request?

use serde_json::value::RawValue;
use serde_json::Value;

#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<&'a RawValue>,
}

fn envelope(data: &str) -> Option<Envelope<'_>> {
    serde_json::from_str(data).ok()
}

/// Is this message the answer to request `id`, rather than a notification or a server-to-client
/// request that happens to share the stream?
pub fn is_answer_to(data: &str, id: &Value) -> bool {
    envelope(data).is_some_and(|envelope| {
        envelope.method.is_none()
            && envelope
                .id
                .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
                .is_some_and(|got| &got == id)
    })
}

/// Does this message carry a `method` (a request or notification, not an answer)?
pub fn is_request_or_notification(data: &str) -> bool {
    envelope(data).is_some_and(|envelope| envelope.method.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recognises_the_answer_and_not_requests_or_other_ids() {
        let id = json!(3);
        assert!(is_answer_to(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#, &id));
        assert!(!is_answer_to(
            r#"{"jsonrpc":"2.0","id":4,"result":{}}"#,
            &id
        ));
        assert!(!is_answer_to(
            r#"{"jsonrpc":"2.0","id":"3","result":{}}"#,
            &id
        ));
        assert!(!is_answer_to(
            r#"{"jsonrpc":"2.0","id":3,"method":"elicitation/create","params":{}}"#,
            &id
        ));
        assert!(!is_answer_to("not json", &id));
    }

    #[test]
    fn requests_and_notifications_carry_a_method() {
        assert!(is_request_or_notification(
            r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#
        ));
        assert!(!is_request_or_notification(
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#
        ));
        assert!(!is_request_or_notification("not json"));
    }
}
