//! Answers leave after their audit records are written.
//!
//! Records are queued by the exchange and written by the audit thread (`audit/writer.rs`); here
//! a response waits for every record queued before it, once when the handler returns (a JSON
//! answer is whole by then) and again before each later piece of a streamed body (events whose
//! records, a redaction for instance, were queued as they passed). Nothing is waited for when the
//! audit thread is already past them: two atomic loads.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Body as _, Frame, SizeHint};

use crate::audit::AuditBarrier;

/// `response`, released once the records queued before it are written; a streamed body's
/// pieces likewise.
pub async fn after_records(barrier: &AuditBarrier, response: Response) -> Response {
    if let Some(written) = barrier.pending() {
        written.await;
    }
    if response.body().size_hint().exact().is_some() {
        return response;
    }
    response.map(|body| {
        Body::new(AuditedBody {
            body,
            barrier: barrier.clone(),
            held: None,
        })
    })
}

/// Resolves once the records a frame waits for are written.
type Written = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A streamed body whose each frame waits for the records queued before it.
struct AuditedBody {
    body: Body,
    barrier: AuditBarrier,
    /// A frame that came before its records were written, and what it waits on.
    held: Option<(Frame<Bytes>, Written)>,
}

impl hyper::body::Body for AuditedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Some((_, written)) = &mut self.held {
            ready!(written.as_mut().poll(cx));
            let (frame, _) = self.held.take().expect("held above");
            return Poll::Ready(Some(Ok(frame)));
        }
        let frame = match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            other => return Poll::Ready(other),
        };
        let Some(written) = self.barrier.pending() else {
            return Poll::Ready(Some(Ok(frame)));
        };
        let mut written: Written = Box::pin(written);
        if written.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Ok(frame)));
        }
        self.held = Some((frame, written));
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
