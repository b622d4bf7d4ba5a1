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

/// A request's id as JSON text (`None` for a notification or a response): how a stdio
/// upstream's answer is matched to it.
pub fn request_id(message: &[u8]) -> Option<String> {
    let envelope: Envelope<'_> = serde_json::from_slice(message).ok()?;
    envelope.method?;
    envelope.id.and_then(canonical)
}

/// A response's id as JSON text (`None` for a request or notification).
pub fn response_id(data: &str) -> Option<String> {
    let envelope = envelope(data)?;
    match envelope.method {
        Some(_) => None,
        None => envelope.id.and_then(canonical),
    }
}

/// An id as the gateway writes it, however the peer escaped it.
fn canonical(id: &RawValue) -> Option<String> {
    serde_json::from_str::<Value>(id.get())
        .ok()
        .map(|id| id.to_string())
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
    fn request_and_response_ids_are_told_apart() {
        let request = br#"{"jsonrpc":"2.0","id":"a","method":"tools/call"}"#;
        assert_eq!(request_id(request).as_deref(), Some(r#""a""#));
        assert_eq!(request_id(br#"{"jsonrpc":"2.0","method":"x"}"#), None);
        assert_eq!(
            response_id(r#"{"jsonrpc":"2.0","id":7,"result":{}}"#).as_deref(),
            Some("7")
        );
        assert_eq!(response_id(std::str::from_utf8(request).unwrap()), None);
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
