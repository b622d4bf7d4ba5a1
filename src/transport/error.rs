//! Every way a request can be refused at the HTTP edge, and the one place where each becomes an
//! HTTP status and a JSON-RPC error, so the same failure always looks the same to a client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::exchange::ExchangeError;
use crate::protocol::modern::EnvelopeError;
use crate::protocol::{answer, code, version, MessageError};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error("Content-Type must be application/json, not {0:?}")]
    UnsupportedMediaType(String),
    #[error("Accept must allow application/json or text/event-stream, not {0:?}")]
    NotAcceptable(String),
    #[error("Origin {0:?} is not allowed; add it with --allowed-origin")]
    ForbiddenOrigin(String),
    #[error("the {0} header was sent more than once; send it once")]
    RepeatedHeader(String),
    #[error("Mcp-Session-Id header is required: send initialize first and repeat the Mcp-Session-Id it answers with")]
    MissingSession,
    #[error("session not found: it ended, expired or was never issued; send initialize to start a new one")]
    UnknownSession,
    #[error("unsupported MCP-Protocol-Version {requested:?}; this gateway speaks {}", version::ALL.join(", "))]
    UnsupportedProtocolVersion { requested: String },
    /// An MCP 2026-07-28 request refused before anything was policed or forwarded.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("JSON-RPC batches were removed in MCP {0}; send one message per POST")]
    BatchNotAllowed(String),
    #[error("request body is larger than the {limit} byte limit (--max-body-bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    #[error("this endpoint has no server-to-client stream for GET: the upstream offers none")]
    GetNotSupported,
    /// A listen request's answer is a stream: a client that takes only JSON cannot read it.
    #[error("subscriptions/listen is answered with a stream: Accept must allow text/event-stream")]
    ListenNeedsStream,
    #[error("{0}")]
    Unauthorized(#[from] crate::auth::AuthError),
    /// With OAuth on: the refusal and the `WWW-Authenticate` challenge that says where to get a token.
    #[error("{error}")]
    Bearer {
        error: crate::oauth::BearerError,
        challenge: String,
    },
    #[error("too many requests in flight for this agent (at most {0}, --max-in-flight-per-agent); wait for answers before sending more")]
    TooManyInFlight(usize),
    #[error("the request body did not arrive within {0} s (--request-read-timeout-secs)")]
    BodyTimeout(u64),
    #[error("{0}; the session cannot be checked until it is back")]
    StateUnavailable(crate::state::StateError),
}

impl GatewayError {
    pub(super) fn status(&self) -> StatusCode {
        match self {
            Self::Message(_)
            | Self::MissingSession
            | Self::RepeatedHeader(_)
            | Self::UnsupportedProtocolVersion { .. }
            | Self::Envelope(_)
            | Self::BatchNotAllowed(_)
            | Self::Exchange(ExchangeError::UnknownElicitation(_))
            | Self::Exchange(ExchangeError::ParamHeaderMismatch(_))
            | Self::BodyRead(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotAcceptable(_) | Self::ListenNeedsStream => StatusCode::NOT_ACCEPTABLE,
            Self::ForbiddenOrigin(_) => StatusCode::FORBIDDEN,
            Self::UnknownSession => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Exchange(ExchangeError::TooManySessions(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Exchange(ExchangeError::Upstream(err)) if err.is_timeout() => {
                StatusCode::GATEWAY_TIMEOUT
            }
            Self::Exchange(ExchangeError::Upstream(_)) => StatusCode::BAD_GATEWAY,
            Self::Exchange(ExchangeError::HeldAgain) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::GetNotSupported => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Bearer {
                error: crate::oauth::BearerError::InsufficientScope(_),
                ..
            } => StatusCode::FORBIDDEN,
            Self::Bearer { .. } => StatusCode::UNAUTHORIZED,
            Self::TooManyInFlight(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::StateUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> i64 {
        match self {
            Self::Message(MessageError::Parse(_)) => code::PARSE_ERROR,
            Self::Message(MessageError::InvalidParams(_)) => code::INVALID_PARAMS,
            Self::Message(MessageError::Invalid(_))
            | Self::UnsupportedMediaType(_)
            | Self::NotAcceptable(_)
            | Self::ListenNeedsStream
            | Self::ForbiddenOrigin(_)
            | Self::MissingSession
            | Self::RepeatedHeader(_)
            | Self::BatchNotAllowed(_)
            | Self::PayloadTooLarge { .. }
            | Self::BodyRead(_)
            | Self::BodyTimeout(_)
            | Self::Exchange(ExchangeError::UnknownElicitation(_))
            | Self::GetNotSupported => code::INVALID_REQUEST,
            Self::Unauthorized(_) | Self::Bearer { .. } => code::UNAUTHORIZED,
            Self::TooManyInFlight(_) | Self::StateUnavailable(_) => code::OVERLOADED,
            Self::UnknownSession => code::SESSION_NOT_FOUND,
            Self::UnsupportedProtocolVersion { .. }
            | Self::Envelope(EnvelopeError::Unsupported(_)) => code::UNSUPPORTED_PROTOCOL_VERSION,
            Self::Envelope(EnvelopeError::Invalid(_)) => code::INVALID_PARAMS,
            Self::Envelope(EnvelopeError::HeaderMismatch(_))
            | Self::Exchange(ExchangeError::ParamHeaderMismatch(_)) => code::HEADER_MISMATCH,
            Self::Exchange(ExchangeError::TooManySessions(_)) => code::OVERLOADED,
            Self::Exchange(ExchangeError::Upstream(_)) => code::UPSTREAM_UNAVAILABLE,
            Self::Exchange(ExchangeError::HeldAgain) => code::INTERNAL_ERROR,
        }
    }

    fn data(&self) -> Option<Value> {
        match self {
            // Names every revision spoken, so a client can pick one (mcp 2.x retries its
            // `server/discover` probe at a listed 2026-07-28, or falls back to `initialize`).
            Self::UnsupportedProtocolVersion { requested }
            | Self::Envelope(EnvelopeError::Unsupported(requested)) => Some(json!({
                "supported": version::ALL,
                "requested": requested,
            })),
            _ => None,
        }
    }

    /// The JSON-RPC error answering the message with this id (`None` before it could be read).
    pub fn answer(&self, id: Option<&Value>) -> Value {
        let mut answer = answer::error(id, self.code(), &self.to_string());
        if let Some(data) = self.data() {
            answer["error"]["data"] = data;
        }
        answer
    }

    pub fn into_response_for(self, id: Option<&Value>) -> Response {
        let mut response = (self.status(), axum::Json(self.answer(id))).into_response();
        match self {
            Self::GetNotSupported => {
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
            }
            // RFC 6750: a 401 names the scheme the client should use.
            Self::Unauthorized(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="mcpgate""#),
                );
            }
            Self::Bearer { challenge, .. } => {
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
            }
            _ => {}
        }
        response
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        self.into_response_for(None)
    }
}
