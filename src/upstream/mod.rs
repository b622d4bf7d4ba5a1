//! The upstream MCP server, reached over streamable HTTP with pooled keep-alive connections.
//!
//! This is the client side only: it knows MCP's words (`protocol`) and HTTP, nothing of the
//! gateway's own edge, policy or sessions.

mod access;
mod pool;
mod probe;
mod revision;
pub mod sse;
mod stdio;

use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use http::{header, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyDataStream, BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use thread_local::ThreadLocal;
use tokio::time::Instant;

pub use access::{headers as upstream_headers, redacted};
pub use probe::await_answer;
pub use revision::Revision;
pub use stdio::{StdioUpstream, UpstreamCommand};

use crate::protocol::headers::{LAST_EVENT_ID, PROTOCOL_VERSION, SESSION_ID};
use crate::protocol::modern::{Routing, METHOD_HEADER, NAME_HEADER};
use crate::protocol::{MessageError, SseEvent};

pub type EventStream = Pin<Box<dyn Stream<Item = Result<SseEvent, UpstreamError>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {url} refused the connection or could not be reached: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("upstream {url} did not answer within {} s (--upstream-timeout-secs)", .timeout.as_secs_f64())]
    Timeout { url: String, timeout: Duration },
    #[error("upstream stream did not carry the answer within {} s (--upstream-timeout-secs)", .timeout.as_secs_f64())]
    StreamTimeout { timeout: Duration },
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
    #[error("upstream answer broke off: {0}")]
    AnswerBroken(String),
    #[error("upstream stream broke: {0}")]
    StreamBroken(String),
    #[error("upstream stream ended before it answered the request")]
    StreamEndedEarly,
    #[error("upstream answer is not JSON: {0}")]
    UnreadableAnswer(String),
    /// A message that is not strict JSON-RPC (`protocol::from_upstream`): not relayed.
    #[error("upstream sent a message the gateway does not relay: {0}")]
    Unrelayable(MessageError),
    /// A response to another request than the one this exchange sent, or none on a stream that
    /// carries no responses: a client would take it for the answer to something it asked.
    #[error("upstream answered a request other than the one sent on this exchange; the answer was not relayed")]
    NotTheAnswer,
    #[error("upstream answered HTTP {0} with no message to a request")]
    NoAnswer(StatusCode),
    #[error("upstream refused {method}: {error}")]
    Refused { method: &'static str, error: String },
    /// A stdio upstream's process could not be started, written to, or is gone.
    #[error("upstream process {0}")]
    ProcessGone(String),
    /// A 404 to initialize, which opens no session and so cannot be an unknown one: the URL
    /// names no MCP endpoint, most often because its path was left out.
    #[error("upstream {url} answered HTTP 404 to initialize: check the URL's path, it must be the server's MCP endpoint (often /mcp, e.g. http://127.0.0.1:9000/mcp)")]
    EndpointNotFound { url: String },
}

impl UpstreamError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::StreamTimeout { .. })
    }

    /// The upstream was not heard (unreachable, silent, cut off): the failure says nothing of
    /// what it would have answered.
    pub fn is_unheard(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::Timeout { .. }
                | Self::StreamTimeout { .. }
                | Self::AnswerBroken(_)
                | Self::StreamBroken(_)
        )
    }

    /// The failure's kind, for metrics and logs: one word per variant.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "unreachable",
            Self::Timeout { .. } | Self::StreamTimeout { .. } => "timeout",
            Self::UnexpectedAnswer { .. } => "unexpected_answer",
            Self::AnswerTooLarge(_) | Self::EventTooLarge(_) => "too_large",
            Self::AnswerBroken(_) | Self::StreamBroken(_) | Self::StreamEndedEarly => "broken",
            Self::UnreadableAnswer(_) | Self::Unrelayable(_) | Self::NoAnswer(_) => "unreadable",
            Self::NotTheAnswer => "not_the_answer",
            Self::Refused { .. } => "refused",
            Self::ProcessGone(_) => "process_gone",
            Self::EndpointNotFound { .. } => "not_found",
        }
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
    /// Sent on every request (`--upstream-header`): the gateway's own credentials. Nothing an
    /// agent sends is: each request's headers are written here, from nothing.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A PEM file of CA certificates trusted besides the webpki roots (`--upstream-ca`).
    pub ca: Option<PathBuf>,
}

/// hyper's HTTP/1.1 connections rather than reqwest: on the call path reqwest's conveniences
/// (URL parsing per request, redirect and retry policies) cost more than the rest of the
/// gateway's policing together (bench/README.md). Redirects are never followed: an evaluated
/// message must not be carried somewhere the operator did not name.
///
/// One pool of connections per thread (`pool.rs`): a connection's task then runs on the event
/// loop of the worker whose calls use it, and no call waits on another thread
/// (`server/mod.rs`).
pub struct HttpUpstream {
    pools: ThreadLocal<pool::Pool>,
    connector: HttpsConnector<HttpConnector>,
    /// Where connections go: scheme, host and port.
    authority: Uri,
    /// What each request names: the URL's path and query (origin-form, RFC 9112 §3.2.1).
    target: Uri,
    /// Set on each request: a hyper connection writes only the headers it is given.
    host: HeaderValue,
    /// The URL without its credentials or query, for logs and error messages.
    shown: String,
    config: UpstreamConfig,
    /// Which revision it speaks, once asked (`revision.rs`).
    revision: revision::Remembered,
}

/// The request-scoped headers the upstream needs to place a message.
#[derive(Clone, Copy, Default)]
pub struct Placement<'a> {
    pub session_id: Option<&'a HeaderValue>,
    pub protocol_version: Option<&'static str>,
    /// A 2026-07-28 request's `Mcp-Method` and `Mcp-Name`, written from the message sent.
    pub routing: Option<&'a Routing>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamConfigError {
    #[error("upstream URL {0} is not a valid HTTP URI")]
    Uri(String),
    #[error("upstream URL {0} must be http:// or https://")]
    Scheme(String),
    #[error("--upstream-header takes NAME: VALUE (or NAME: env:VARIABLE)")]
    HeaderSpec,
    #[error("--upstream-header {0:?}: not a valid header name")]
    HeaderName(String),
    #[error("--upstream-header {0}: the gateway sets this header itself")]
    ReservedHeader(HeaderName),
    #[error("--upstream-header {0}: not a valid header value")]
    HeaderValue(HeaderName),
    #[error("--upstream-header {header}: environment variable {variable} is not set")]
    HeaderEnv {
        header: HeaderName,
        variable: String,
    },
    #[error("--upstream-ca {}: {detail}", .path.display())]
    Ca { path: PathBuf, detail: String },
}

const ACCEPT_BOTH: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");

/// The upstream, however it is reached: the exchange sends and ends sessions the same way.
#[expect(
    clippy::large_enum_variant,
    reason = "one per gateway, built at start and never moved on the call path"
)]
pub enum Upstream {
    Http(HttpUpstream),
    /// A program per session on its stdin and stdout (`--upstream-command`, `stdio.rs`).
    Stdio(StdioUpstream),
}

impl Upstream {
    /// The upstream as logs and errors name it: a URL without credentials or query, or the
    /// program.
    pub fn url(&self) -> &str {
        match self {
            Self::Http(http) => http.url(),
            Self::Stdio(stdio) => stdio.url(),
        }
    }

    fn timeout(&self) -> Duration {
        match self {
            Self::Http(http) => http.config.timeout,
            Self::Stdio(stdio) => stdio.timeout(),
        }
    }

    /// Sends one serialised message (the exact bytes the policy evaluated).
    pub async fn post(
        &self,
        message: Bytes,
        placement: Placement<'_>,
    ) -> Result<Reply, UpstreamError> {
        match self {
            Self::Http(http) => http.post(message, placement).await,
            Self::Stdio(stdio) => stdio.post(message, placement).await,
        }
    }

    /// Opens the session's server-to-client stream, or the status it is refused with (405 when
    /// the upstream offers none).
    pub async fn open_stream(
        &self,
        placement: Placement<'_>,
        last_event_id: Option<&HeaderValue>,
    ) -> Result<Result<EventStream, StatusCode>, UpstreamError> {
        match self {
            Self::Http(http) => http.open_stream(placement, last_event_id).await,
            Self::Stdio(stdio) => Ok(stdio.open_stream(placement)),
        }
    }

    /// Ends the upstream session (best effort: the upstream may have ended it already).
    pub async fn end_session(&self, placement: Placement<'_>) -> Result<StatusCode, UpstreamError> {
        match self {
            Self::Http(http) => http.end_session(placement).await,
            Self::Stdio(stdio) => Ok(stdio.end_session(placement).await),
        }
    }

    /// The error of a 404 to initialize.
    pub fn endpoint_not_found(&self) -> UpstreamError {
        UpstreamError::EndpointNotFound {
            url: self.url().to_owned(),
        }
    }
}

impl HttpUpstream {
    pub fn new(config: UpstreamConfig) -> Result<Self, UpstreamConfigError> {
        let shown = redacted(&config.url);
        let uri: Uri = config
            .url
            .as_str()
            .parse()
            .map_err(|_| UpstreamConfigError::Uri(shown.clone()))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(UpstreamConfigError::Scheme(shown));
        }
        let root = http::uri::PathAndQuery::from_static("/");
        let mut parts = uri.into_parts();
        let target = Uri::from(parts.path_and_query.replace(root.clone()).unwrap_or(root));
        let authority =
            Uri::from_parts(parts).map_err(|_| UpstreamConfigError::Uri(shown.clone()))?;
        let host = match (config.url.host_str(), config.url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err(UpstreamConfigError::Uri(shown)),
        };
        let host =
            HeaderValue::from_str(&host).map_err(|_| UpstreamConfigError::Uri(shown.clone()))?;
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(config.connect_timeout));
        tcp.enforce_http(false);
        let connector = access::connector(tcp, config.ca.as_deref())?;
        Ok(Self {
            pools: ThreadLocal::new(),
            connector,
            authority,
            target,
            host,
            shown,
            config,
            revision: revision::Remembered::default(),
        })
    }

    /// The upstream's URL as it may be shown: without credentials or query.
    pub fn url(&self) -> &str {
        &self.shown
    }

    fn request(
        &self,
        method: Method,
        placement: Placement<'_>,
        body: Bytes,
    ) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = self.target.clone();
        let headers = request.headers_mut();
        headers.insert(header::HOST, self.host.clone());
        if let Some(id) = placement.session_id {
            headers.insert(SESSION_ID, id.clone());
        }
        if let Some(version) = placement.protocol_version {
            // A revision the gateway speaks: one of its own constants, not text from a client.
            headers.insert(PROTOCOL_VERSION, HeaderValue::from_static(version));
        }
        if let Some(routing) = placement.routing {
            for (name, value) in [
                (METHOD_HEADER, &routing.method),
                (NAME_HEADER, &routing.name),
            ] {
                if let Some(value) = value {
                    headers.insert(name, value.clone());
                }
            }
            for (name, value) in &routing.params {
                headers.insert(name.clone(), value.clone());
            }
        }
        for (name, value) in &self.config.headers {
            headers.append(name.clone(), value.clone());
        }
        request
    }

    /// Sends a request; the answer's headers must arrive before `deadline`.
    async fn send(
        &self,
        request: Request<Full<Bytes>>,
        deadline: Instant,
    ) -> Result<Response<Incoming>, UpstreamError> {
        tokio::time::timeout_at(deadline, self.transmit(request))
            .await
            .unwrap_or_else(|_| Err(self.timeout_error()))
    }

    /// Sends `request` on one of this thread's connections.
    async fn transmit(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        self.pools
            .get_or(|| pool::Pool::new(self.connector.clone(), self.authority.clone()))
            .send(request)
            .await
            .map_err(|err| UpstreamError::Unreachable {
                url: self.shown.clone(),
                detail: error_chain(err.as_ref()),
            })
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.config.timeout
    }

    fn timeout_error(&self) -> UpstreamError {
        UpstreamError::Timeout {
            url: self.shown.clone(),
            timeout: self.config.timeout,
        }
    }

    /// POSTs one serialised message (the exact bytes the policy evaluated). The answer's headers,
    /// and a JSON answer's body, must arrive within `--upstream-timeout-secs`; a stream may last.
    pub async fn post(
        &self,
        message: Bytes,
        placement: Placement<'_>,
    ) -> Result<Reply, UpstreamError> {
        let mut request = self.request(Method::POST, placement, message);
        request.headers_mut().insert(header::CONTENT_TYPE, JSON);
        request.headers_mut().insert(header::ACCEPT, ACCEPT_BOTH);
        // One timer for the whole exchange: arming a timer costs more than the policy decision.
        match tokio::time::timeout(self.config.timeout, self.exchange(request)).await {
            Err(_) => Err(self.timeout_error()),
            Ok(reply) => reply,
        }
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<Reply, UpstreamError> {
        let response = self.transmit(request).await?;
        let status = response.status();
        let session_id = response.headers().get(SESSION_ID).cloned();
        match media_type(&response) {
            Media::EventStream if status.is_success() => Ok(Reply::Stream {
                events: self.events(response),
                session_id,
            }),
            Media::Json => Ok(Reply::Json {
                status,
                body: self.read_json(response).await?,
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
            _ => Err(self.unexpected(response).await),
        }
    }

    /// Opens the upstream's server-to-client stream, or the status it refused with (405 when it
    /// offers none).
    pub async fn open_stream(
        &self,
        placement: Placement<'_>,
        last_event_id: Option<&HeaderValue>,
    ) -> Result<Result<EventStream, StatusCode>, UpstreamError> {
        let mut request = self.request(Method::GET, placement, Bytes::new());
        request.headers_mut().insert(header::ACCEPT, EVENT_STREAM);
        if let Some(id) = last_event_id {
            request.headers_mut().insert(LAST_EVENT_ID, id.clone());
        }
        let deadline = self.deadline();
        let response = self.send(request, deadline).await?;
        let status = response.status();
        if status.is_success() && media_type(&response) == Media::EventStream {
            Ok(Ok(self.events(response)))
        } else if status.is_client_error() {
            Ok(Err(status))
        } else {
            tokio::time::timeout_at(deadline, self.unexpected(response))
                .await
                .map_or_else(|_| Err(self.timeout_error()), Err)
        }
    }

    /// Ends the upstream session (best effort: the upstream may have ended it already).
    pub async fn end_session(&self, placement: Placement<'_>) -> Result<StatusCode, UpstreamError> {
        let request = self.request(Method::DELETE, placement, Bytes::new());
        let response = self.send(request, self.deadline()).await?;
        Ok(response.status())
    }

    fn events(&self, response: Response<Incoming>) -> EventStream {
        let body = BodyDataStream::new(response.into_body());
        Box::pin(sse::events(body, self.config.max_event_bytes))
    }

    /// Reads a JSON answer whole, up to `--max-body-bytes`; the caller bounds the time.
    async fn read_json(&self, response: Response<Incoming>) -> Result<Bytes, UpstreamError> {
        let limit = self.config.max_body_bytes;
        match Limited::new(response.into_body(), limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(err) if err.is::<LengthLimitError>() => Err(UpstreamError::AnswerTooLarge(limit)),
            Err(err) => Err(UpstreamError::AnswerBroken(error_chain(err.as_ref()))),
        }
    }

    async fn unexpected(&self, response: Response<Incoming>) -> UpstreamError {
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let body = self.read_json(response).await.unwrap_or_default();
        let snippet = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        UpstreamError::UnexpectedAnswer {
            status,
            content_type,
            snippet,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Media {
    Json,
    EventStream,
    Other,
}

fn media_type<B>(response: &Response<B>) -> Media {
    let essence = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.as_bytes().split(|&b| b == b';').next())
        .map(<[u8]>::trim_ascii)
        .unwrap_or_default();
    if essence.eq_ignore_ascii_case(b"application/json") {
        Media::Json
    } else if essence.eq_ignore_ascii_case(b"text/event-stream") {
        Media::EventStream
    } else {
        Media::Other
    }
}

/// hyper's top-level message ("client error (Connect)") hides the cause the operator needs.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(url: &str) -> HttpUpstream {
        HttpUpstream::new(UpstreamConfig {
            url: url.parse().unwrap(),
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            max_body_bytes: 1024,
            max_event_bytes: 1024,
            headers: Vec::new(),
            ca: None,
        })
        .unwrap()
    }

    /// A hyper connection writes the request's URI as it is: it must be origin-form.
    #[test]
    fn requests_name_the_upstream_path_and_query_in_origin_form() {
        for (url, target) in [
            ("http://127.0.0.1:9101/mcp", "/mcp"),
            (
                "https://mcp.example.com/v1/mcp?tenant=a",
                "/v1/mcp?tenant=a",
            ),
            ("http://user:secret@[::1]:8080", "/"),
        ] {
            let request = upstream(url).request(Method::POST, Placement::default(), Bytes::new());
            assert_eq!(request.uri(), target, "{url}");
        }
    }

    #[test]
    fn requests_name_the_upstream_host_without_credentials_or_a_default_port() {
        for (url, host) in [
            ("http://127.0.0.1:9101/mcp", "127.0.0.1:9101"),
            ("https://mcp.example.com:443/mcp", "mcp.example.com"),
            ("http://user:secret@[::1]:8080/mcp", "[::1]:8080"),
        ] {
            let request = upstream(url).request(Method::POST, Placement::default(), Bytes::new());
            assert_eq!(request.headers()[header::HOST], host, "{url}");
        }
    }
}
