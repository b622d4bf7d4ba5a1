//! The legacy HTTP+SSE transport (2024-11-05) from the client's side: `GET /sse`, then each
//! message POSTed to the endpoint its first event names.

use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;

use super::{Answer, Harness, SseReader};

/// A client's legacy stream: its message endpoint, and its events as they come.
pub struct LegacyStream {
    pub endpoint: String,
    pub reader: SseReader,
}

fn headers(key: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    if let Some(key) = key {
        let bearer = HeaderValue::from_str(&format!("Bearer {key}")).unwrap();
        headers.insert(AUTHORIZATION, bearer);
    }
    headers
}

impl LegacyStream {
    pub async fn open(harness: &Harness, key: Option<&str>) -> Self {
        let response = reqwest::Client::new()
            .get(format!("{}/sse", harness.base))
            .headers(headers(key))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.bytes_stream();
        let mut seen = String::new();
        let endpoint = loop {
            let chunk = body.next().await.expect("the endpoint event").unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(event) = seen.split("\n\n").find(|e| e.contains("event: endpoint")) {
                let data = event.lines().find_map(|l| l.strip_prefix("data: "));
                break data
                    .expect("the endpoint event names the endpoint")
                    .to_owned();
            }
        };
        assert!(endpoint.starts_with("/message?sessionId="), "{endpoint}");
        Self {
            endpoint: format!("{}{endpoint}", harness.base),
            reader: SseReader::from_stream(body),
        }
    }

    pub async fn post(&self, key: Option<&str>, message: &Value) -> Answer {
        let response = reqwest::Client::new()
            .post(&self.endpoint)
            .headers(headers(key))
            .json(message)
            .send()
            .await
            .unwrap();
        Answer::read(response).await
    }
}
