//! Finding the answer to a request in a stream of messages, and asking the upstream things
//! outside any agent's session (`mcpgate policy check --upstream`).

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use super::{EventStream, Placement, Reply, Upstream, UpstreamError};

/// Is this message (SSE event data) the answer to request `id`, rather than a notification or a
/// server-to-client request that happens to share the stream?
pub fn is_answer_to(data: &str, id: &Value) -> bool {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        id: Option<&'a serde_json::value::RawValue>,
        method: Option<&'a serde_json::value::RawValue>,
    }
    let Ok(envelope) = serde_json::from_str::<Envelope>(data) else {
        return false;
    };
    envelope.method.is_none()
        && envelope
            .id
            .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
            .is_some_and(|got| &got == id)
}

/// Does this message carry a `method` (a request or notification, not an answer)?
pub fn is_request_or_notification(data: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        method: Option<&'a serde_json::value::RawValue>,
    }
    serde_json::from_str::<Envelope>(data).is_ok_and(|e| e.method.is_some())
}

/// Reads `events` until the answer to `id`; its JSON text.
pub async fn await_answer(
    mut events: EventStream,
    id: &Value,
    within: Duration,
) -> Result<String, UpstreamError> {
    let find = async {
        while let Some(event) = events.next().await {
            let event = event?;
            if is_answer_to(&event.data, id) {
                return Ok(event.data);
            }
        }
        Err(UpstreamError::StreamEndedEarly)
    };
    tokio::time::timeout(within, find)
        .await
        .unwrap_or(Err(UpstreamError::Timeout {
            url: "upstream stream".into(),
            timeout: within,
        }))
}

impl Upstream {
    /// The names of every tool the upstream lists, all pages, in a session of the gateway's own.
    pub async fn list_tool_names(&self) -> Result<Vec<String>, UpstreamError> {
        let version = crate::transport::version::SUPPORTED_VERSIONS[2];
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": {"name": "mcpgate-policy-check", "version": env!("CARGO_PKG_VERSION")}}});
        let first = Placement {
            session_id: None,
            protocol_version: Some(version),
        };
        let (answer, session_id) = self.ask(&init, first).await?;
        if let Some(error) = answer.get("error") {
            return Err(UpstreamError::Stream(format!("initialize failed: {error}")));
        }
        let placement = Placement {
            session_id: session_id.as_ref(),
            protocol_version: Some(version),
        };
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.post(
            serde_json::to_vec(&initialized).expect("serialises").into(),
            placement,
        )
        .await?;
        let mut names = Vec::new();
        let mut cursor: Option<Value> = None;
        for page in 1.. {
            let mut request = json!({"jsonrpc": "2.0", "id": page, "method": "tools/list"});
            if let Some(cursor) = cursor.take() {
                request["params"] = json!({ "cursor": cursor });
            }
            let (answer, _) = self.ask(&request, placement).await?;
            let result = answer
                .get("result")
                .ok_or_else(|| UpstreamError::Stream(format!("tools/list failed: {answer}")))?;
            for tool in result
                .get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = tool.get("name").and_then(Value::as_str) {
                    names.push(name.to_owned());
                }
            }
            match result.get("nextCursor") {
                Some(next) if !next.is_null() => cursor = Some(next.clone()),
                _ => break,
            }
        }
        if session_id.is_some() {
            let _ = self.end_session(placement).await;
        }
        Ok(names)
    }

    async fn ask(
        &self,
        request: &Value,
        placement: Placement<'_>,
    ) -> Result<(Value, Option<axum::http::HeaderValue>), UpstreamError> {
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let body = serde_json::to_vec(request).expect("serialises").into();
        let (text, session_id) = match self.post(body, placement).await? {
            Reply::Json {
                body, session_id, ..
            } => (String::from_utf8_lossy(&body).into_owned(), session_id),
            Reply::Stream { events, session_id } => (
                await_answer(events, &id, self.config.timeout).await?,
                session_id,
            ),
            Reply::Accepted { status } => {
                return Err(UpstreamError::Stream(format!(
                    "upstream answered {status} to a request"
                )))
            }
        };
        let answer = serde_json::from_str(&text)
            .map_err(|e| UpstreamError::Stream(format!("unreadable answer: {e}")))?;
        Ok((answer, session_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
