//! Everything the simulated server refuses, and how each refusal looks on the wire: the HTTP
//! status and JSON-RPC error code are decided here and nowhere else.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// JSON-RPC 2.0 error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimulatorError {
    #[error("Parse error: {0}")]
    Parse(String),
    #[error("Invalid Request: {0}")]
    InvalidRequest(&'static str),
    /// Transports: "servers that require a session ID SHOULD respond to requests without an
    /// Mcp-Session-Id header (other than initialization) with HTTP 400".
    #[error("Bad Request: Missing session ID")]
    MissingSession,
    /// Transports: after a session ends the server "MUST respond to requests containing that
    /// session ID with HTTP 404".
    #[error("Not Found: Session has been terminated or does not exist")]
    UnknownSession,
    /// 2025-06-18 transports: an invalid or unsupported MCP-Protocol-Version MUST get 400.
    #[error("Bad Request: Unsupported protocol version: {0}")]
    UnsupportedProtocolVersion(String),
    #[error("Unsupported Media Type: Content-Type must be application/json")]
    UnsupportedMediaType,
    /// 2025-06-18 transports: an invalid Origin MUST get 403 (DNS rebinding protection).
    #[error("Forbidden: Origin not allowed")]
    ForbiddenOrigin,
    /// Transports: a server without a standalone SSE stream answers GET with 405.
    #[error("Method Not Allowed: this server offers no standalone SSE stream")]
    NoStandaloneStream,
    #[error("Method not found: {0}")]
    MethodNotFound(String),
    #[error("{0}")]
    InvalidParams(String),
}

impl SimulatorError {
    /// The HTTP status. JSON-RPC-level errors travel in a 200 like any other response.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Parse(_)
            | Self::InvalidRequest(_)
            | Self::MissingSession
            | Self::UnsupportedProtocolVersion(_) => StatusCode::BAD_REQUEST,
            Self::UnknownSession => StatusCode::NOT_FOUND,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::ForbiddenOrigin => StatusCode::FORBIDDEN,
            Self::NoStandaloneStream => StatusCode::METHOD_NOT_ALLOWED,
            Self::MethodNotFound(_) | Self::InvalidParams(_) => StatusCode::OK,
        }
    }

    pub fn code(&self) -> i64 {
        match self {
            Self::Parse(_) => PARSE_ERROR,
            Self::MethodNotFound(_) => METHOD_NOT_FOUND,
            Self::InvalidParams(_) => INVALID_PARAMS,
            _ => INVALID_REQUEST,
        }
    }

    /// The JSON-RPC error response, answering `id` (`null` when the request's id is unknown).
    pub fn to_message(&self, id: &Value) -> Vec<u8> {
        let message = json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": self.code(), "message": self.to_string()},
        });
        serde_json::to_vec(&message).unwrap_or_default()
    }

    /// The whole HTTP response for a refusal of the request with `id`.
    pub fn into_response_for(self, id: &Value) -> Response {
        let mut response = (
            self.status(),
            [(header::CONTENT_TYPE, "application/json")],
            self.to_message(id),
        )
            .into_response();
        if self == Self::NoStandaloneStream {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
        }
        response
    }
}

impl IntoResponse for SimulatorError {
    fn into_response(self) -> Response {
        self.into_response_for(&Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_refusals_map_to_their_statuses() {
        assert_eq!(
            SimulatorError::MissingSession.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            SimulatorError::UnknownSession.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(SimulatorError::Parse("eof".into()).code(), -32700);
        assert_eq!(
            SimulatorError::MethodNotFound("x".into()).status(),
            StatusCode::OK
        );
    }

    #[test]
    fn error_message_echoes_the_id() {
        let body = SimulatorError::InvalidParams("Unknown tool: nope".into()).to_message(&json!(7));
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32602, "message": "Unknown tool: nope"}})
        );
    }

    #[test]
    fn get_is_refused_with_allow_header() {
        let response = SimulatorError::NoStandaloneStream.into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "POST, DELETE");
    }
}
