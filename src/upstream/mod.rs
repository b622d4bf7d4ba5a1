//! The upstream MCP server, reached over streamable HTTP with pooled keep-alive connections.

pub mod answer;
pub mod sse;

use std::pin::Pin;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use bytes::Bytes;
use futures::Stream;

pub use sse::SseEvent;

use crate::transport::headers::{LAST_EVENT_ID, PROTOCOL_VERSION, SESSION_ID};

pub type EventStream = Pin<Box<dyn Stream<Item = Result<SseEvent, UpstreamError>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {url} refused the connection or could not be reached: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("upstream {url} did not answer within {} s (--upstream-timeout)", .timeout.as_secs_f64())]
    Timeout { url: String, timeout: Duration },
    #[error("upstream answered HTTP {status} with {content_type:?}: {snippet}")]
    UnexpectedAnswer {
        status: StatusCode,
        content_type: String,
        snippet: String,
    },
    #[error("upstream answer is larger than the {0} byte limit (--max-body-bytes)")]
    AnswerTooLarge(usize),
    #[error("upstream sent an SSE event larger than the {0} byte limit (--max-event-bytes)")]
    EventTooLarge(usize),
    #[error("upstream stream broke: {0}")]
    Stream(String),
    #[error("upstream stream ended before it answered the request")]
    StreamEndedEarly,
}

impl UpstreamError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }
}

/// What the upstream answered to a POST.
pub enum Reply {
    /// 202: a notification or response was accepted.
    Accepted { status: StatusCode },
    /// A JSON body (a JSON-RPC answer, or a JSON-RPC error with an error status).
    Json {
        status: StatusCode,
        body: Bytes,
        session_id: Option<HeaderValue>,
    },
    /// An SSE stream of messages ending with the answer.
    Stream {
        events: EventStream,
        session_id: Option<HeaderValue>,
    },
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub url: reqwest::Url,
    pub connect_timeout: Duration,
    /// Time allowed for the answer's headers and, for JSON answers, the whole body.
    pub timeout: Duration,
    pub max_body_bytes: usize,
    pub max_event_bytes: usize,
}

pub struct Upstream {
    client: reqwest::Client,
    config: UpstreamConfig,
}

/// The request-scoped headers the upstream needs to place a message.
#[derive(Clone, Copy, Default)]
pub struct Placement<'a> {
    pub session_id: Option<&'a HeaderValue>,
    pub protocol_version: Option<&'a str>,
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            // Redirects could carry an evaluated message somewhere the operator did not name.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { client, config })
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.config.url
    }

    fn request(
        &self,
        method: reqwest::Method,
        placement: Placement<'_>,
    ) -> reqwest::RequestBuilder {
        let mut request = self.client.request(method, self.config.url.clone());
        if let Some(id) = placement.session_id {
            request = request.header(SESSION_ID, id.clone());
        }
        if let Some(version) = placement.protocol_version {
            request = request.header(PROTOCOL_VERSION, version);
        }
        request
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, UpstreamError> {
        match tokio::time::timeout(self.config.timeout, request.send()).await {
            Err(_) => Err(self.timeout_error()),
            Ok(Err(err)) if err.is_timeout() => Err(self.timeout_error()),
            Ok(Err(err)) => Err(UpstreamError::Unreachable {
                url: self.config.url.to_string(),
                detail: error_chain(&err),
            }),
            Ok(Ok(response)) => Ok(response),
        }
    }

    fn timeout_error(&self) -> UpstreamError {
        UpstreamError::Timeout {
            url: self.config.url.to_string(),
            timeout: self.config.timeout,
        }
    }

    /// POSTs one serialised message (the exact bytes the policy evaluated).
    pub async fn post(
        &self,
        message: Bytes,
        placement: Placement<'_>,
    ) -> Result<Reply, UpstreamError> {
        let request = self
            .request(reqwest::Method::POST, placement)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .body(message);
        let response = self.send(request).await?;
        let status = response.status();
        let session_id = response.headers().get(SESSION_ID).cloned();
        match content_type(&response).as_str() {
            "text/event-stream" if status.is_success() => Ok(Reply::Stream {
                events: self.events(response),
                session_id,
            }),
            "application/json" => Ok(Reply::Json {
                status,
                body: self.read_body(response).await?,
                session_id,
            }),
            _ if status == StatusCode::ACCEPTED => Ok(Reply::Accepted { status }),
            // Session-level refusals (unknown session 404, bad request 400) are the upstream's
            // answer to relay, even when it sends them without a JSON body.
            _ if status.is_client_error() => Ok(Reply::Json {
                status,
                body: Bytes::new(),
                session_id,
            }),
            other => Err(self.unexpected(status, other.to_owned(), response).await),
        }
    }

    /// Opens the upstream's server-to-client stream; `None` when it offers none (405).
    pub async fn open_stream(
        &self,
        placement: Placement<'_>,
        last_event_id: Option<&HeaderValue>,
    ) -> Result<Result<EventStream, StatusCode>, UpstreamError> {
        let mut request = self
            .request(reqwest::Method::GET, placement)
            .header(header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header(LAST_EVENT_ID, id.clone());
        }
        let response = self.send(request).await?;
        let status = response.status();
        if status.is_success() && content_type(&response) == "text/event-stream" {
            Ok(Ok(self.events(response)))
        } else if status.is_client_error() {
            Ok(Err(status))
        } else {
            let kind = content_type(&response);
            Err(self.unexpected(status, kind, response).await)
        }
    }

    /// Ends the upstream session (best effort: the upstream may have ended it already).
    pub async fn end_session(&self, placement: Placement<'_>) -> Result<StatusCode, UpstreamError> {
        let response = self
            .send(self.request(reqwest::Method::DELETE, placement))
            .await?;
        Ok(response.status())
    }

    /// True when the upstream answers HTTP at all: readiness, not health of its tools.
    pub async fn answers(&self, within: Duration) -> bool {
        let probe = self
            .client
            .post(self.config.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .body(r#"{"jsonrpc":"2.0","id":"mcpgate-readiness","method":"ping"}"#)
            .timeout(within);
        probe.send().await.is_ok()
    }

    fn events(&self, response: reqwest::Response) -> EventStream {
        Box::pin(sse::events(
            response.bytes_stream(),
            self.config.max_event_bytes,
        ))
    }

    async fn read_body(&self, response: reqwest::Response) -> Result<Bytes, UpstreamError> {
        let limit = self.config.max_body_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(UpstreamError::AnswerTooLarge(limit));
        }
        let read = async {
            let mut response = response;
            let mut body = bytes::BytesMut::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| UpstreamError::Stream(error_chain(&e)))?
            {
                if body.len() + chunk.len() > limit {
                    return Err(UpstreamError::AnswerTooLarge(limit));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body.freeze())
        };
        tokio::time::timeout(self.config.timeout, read)
            .await
            .map_err(|_| self.timeout_error())?
    }

    async fn unexpected(
        &self,
        status: StatusCode,
        content_type: String,
        response: reqwest::Response,
    ) -> UpstreamError {
        let body = response.bytes().await.unwrap_or_default();
        let snippet: String = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        UpstreamError::UnexpectedAnswer {
            status,
            content_type,
            snippet,
        }
    }
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// reqwest's top-level message ("error sending request") hides the cause the operator needs.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
