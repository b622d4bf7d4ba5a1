//! An exchange's [`Outcome`] as the streamable HTTP transport answers it: JSON, SSE, or a bare
//! status. The one place outcomes become responses.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use super::error::GatewayError;
use super::headers::AnswerFormat;
use super::sse;
use crate::exchange::{self, Outcome};
use crate::protocol::Kind;

/// The response to the message with this `id`, in the format its client takes.
pub async fn response(
    outcome: Outcome,
    format: AnswerFormat,
    id: Option<Value>,
    within: Duration,
) -> Response {
    match (outcome, format) {
        (Outcome::Streamed(messages), AnswerFormat::Stream) => sse::messages_response(messages, id),
        (Outcome::Held(held), AnswerFormat::Stream) => {
            sse::messages_response(held.into_messages(), id)
        }
        (outcome, _) => {
            let answer = settle(outcome, id.as_ref(), within).await;
            match answer.body {
                Some(body) => json_response(answer.status, body),
                None => answer.status.into_response(),
            }
        }
    }
}

/// What a client that takes only JSON gets: a status, and the message when there is one.
pub struct JsonAnswer {
    pub status: StatusCode,
    pub body: Option<Bytes>,
}

/// Waits for what the outcome still has to say (a streamed or held answer) and gives it as one
/// JSON answer.
pub async fn settle(outcome: Outcome, id: Option<&Value>, within: Duration) -> JsonAnswer {
    let outcome = match outcome {
        // Boxed: rare, and its future would size every JSON answer's.
        Outcome::Held(held) => Box::pin(held.settle()).await,
        other => other,
    };
    let failed = |err: GatewayError| JsonAnswer {
        status: err.status(),
        body: Some(err.answer(id).to_string().into()),
    };
    match outcome {
        Outcome::Accepted => JsonAnswer {
            status: StatusCode::ACCEPTED,
            body: None,
        },
        Outcome::Answered { status, body } => JsonAnswer {
            status,
            body: (!body.is_empty()).then_some(body),
        },
        Outcome::Refused { answer, kind } => JsonAnswer {
            // Transports spec: input the server cannot accept gets an HTTP error status.
            status: match kind {
                Kind::Request => StatusCode::OK,
                Kind::Notification | Kind::Response => StatusCode::FORBIDDEN,
            },
            body: Some(answer.to_string().into()),
        },
        Outcome::Failed(err) => failed(err.into()),
        Outcome::Streamed(messages) => match id {
            None => JsonAnswer {
                status: StatusCode::ACCEPTED,
                body: None,
            },
            Some(id) => match exchange::collect_answer(messages, id, within).await {
                Ok(body) => JsonAnswer {
                    status: StatusCode::OK,
                    body: Some(body),
                },
                Err(err) => failed(err.into()),
            },
        },
        Outcome::Held(_) => failed(exchange::ExchangeError::HeldAgain.into()),
    }
}

/// Built directly: axum's `(status, headers, body)` conversion parses and copies the content
/// type's text into a new header value on every answer.
fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, JSON_CONTENT_TYPE);
    response
}

const JSON_CONTENT_TYPE: HeaderValue = HeaderValue::from_static("application/json");
