//! Keep-alive HTTP/1.1 connections to the upstream, one pool per worker thread.
//!
//! hyper-util's pooled client did this, at ~8k instructions a call more (callgrind,
//! `bench/instructions`: 81.6k a call with it, 73.2k with this): it keys its pool by scheme and
//! host (hashed with SipHash, under a mutex, twice a call), spawns a task per request to put the
//! connection back once its answer is read, and stores the connector's connection info in each
//! answer's extensions. Here a thread's calls all go to one upstream and never leave the
//! thread, so its pool is a list: the connection put back last is the first tried (its buffers
//! are warm), one is taken only when hyper says it is ready for a request, and a closed one is
//! dropped where it is met. A connection goes back to the list as soon as its answer's head
//! arrives; it is ready again once its answer's body has been read.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::time::Instant;
use tower::Service;

/// Connections idle longer are closed when next met (an upstream usually closes them sooner).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Connections kept idle at most; the oldest is closed to keep a newer one.
const MAX_IDLE: usize = 256;

type Sender = SendRequest<Full<Bytes>>;

pub(super) type PoolError = Box<dyn std::error::Error + Send + Sync>;

/// One thread's connections to the upstream.
pub(super) struct Pool {
    connector: HttpsConnector<HttpConnector>,
    /// Where connections go (scheme, host and port: the request's own URI is origin-form).
    authority: Uri,
    /// Oldest first. Only this pool's thread locks it, so it is never contended; a lock is
    /// what lets a call's future hold the pool and still move between threads.
    idle: Mutex<VecDeque<Idle>>,
}

struct Idle {
    sender: Sender,
    since: Instant,
}

impl Pool {
    pub(super) fn new(connector: HttpsConnector<HttpConnector>, authority: Uri) -> Self {
        Self {
            connector,
            authority,
            idle: Mutex::default(),
        }
    }

    /// Sends `request` on a pooled connection that is ready, or on a new one. A request that
    /// a pooled connection closed before it was written (the upstream ended an idle connection
    /// at that moment) is sent again on another.
    pub(super) async fn send(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, PoolError> {
        while let Some(mut sender) = self.take_ready() {
            match sender.try_send_request(request).await {
                Ok(response) => {
                    self.put_back(sender);
                    return Ok(response);
                }
                Err(mut err) => match err.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(err.into_error().into()),
                },
            }
        }
        // Boxed: connecting (TCP, TLS, handshake) is a large future, and rare.
        let mut sender = Box::pin(self.connect()).await?;
        let response = sender.send_request(request).await?;
        self.put_back(sender);
        Ok(response)
    }

    /// The most recently used connection that is ready for a request, dropping closed and
    /// expired ones on the way.
    fn take_ready(&self) -> Option<Sender> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        while idle
            .front()
            .is_some_and(|oldest| now.duration_since(oldest.since) > IDLE_TIMEOUT)
        {
            idle.pop_front();
        }
        idle.retain(|entry| !entry.sender.is_closed());
        let ready = idle.iter().rposition(|entry| entry.sender.is_ready())?;
        idle.remove(ready).map(|entry| entry.sender)
    }

    fn put_back(&self, sender: Sender) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() >= MAX_IDLE {
            idle.pop_front();
        }
        idle.push_back(Idle {
            sender,
            since: Instant::now(),
        });
    }

    /// A new connection, its task running on this thread's event loop.
    async fn connect(&self) -> Result<Sender, PoolError> {
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx)).await?;
        let io = connector.call(self.authority.clone()).await?;
        let (sender, connection) = http1::handshake(io).await?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "an upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// An HTTP/1.1 server on 127.0.0.1 that answers every POST with its body, counts the
    /// connections it accepts, and closes each connection after one answer if told to. The
    /// body `hold` gets an answer whose body never ends.
    async fn echo_server(close_after_answer: bool) -> (Uri, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}/", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(answer_each(tcp, close_after_answer));
            }
        });
        (uri, accepted)
    }

    async fn answer_each(mut tcp: TcpStream, close_after_answer: bool) {
        let mut buffer = Vec::new();
        loop {
            let Some(head_end) = read_until_head(&mut tcp, &mut buffer).await else {
                return;
            };
            let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |n| n.trim().parse().unwrap());
            while buffer.len() < head_end + length {
                if tcp.read_buf(&mut buffer).await.unwrap_or(0) == 0 {
                    return;
                }
            }
            let body: Vec<u8> = buffer.drain(..head_end + length).skip(head_end).collect();
            if body == b"hold" {
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\nhold")
                    .await;
                let _ = tcp.read_buf(&mut buffer).await;
                return;
            }
            let mut answer =
                format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
            answer.extend_from_slice(&body);
            tcp.write_all(&answer).await.unwrap();
            if close_after_answer {
                return;
            }
        }
    }

    /// Where the head ends (after its blank line), reading more as needed; `None` at EOF.
    async fn read_until_head(tcp: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<usize> {
        loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(at + 4);
            }
            if tcp.read_buf(buffer).await.unwrap_or(0) == 0 {
                return None;
            }
        }
    }

    fn pool(uri: &Uri) -> Pool {
        let connector = super::super::access::connector(HttpConnector::new(), None).unwrap();
        Pool::new(connector, uri.clone())
    }

    fn post(uri: &Uri, text: &'static str) -> Request<Full<Bytes>> {
        Request::post("/")
            .header(http::header::HOST, uri.authority().unwrap().as_str())
            .body(Full::new(Bytes::from_static(text.as_bytes())))
            .unwrap()
    }

    async fn text(response: Response<Incoming>) -> Bytes {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    /// Sends `calls` requests one after another, each answered with its own text.
    async fn call(pool: &Pool, uri: &Uri, calls: usize) {
        for _ in 0..calls {
            let response = pool.send(post(uri, "again")).await.unwrap();
            assert_eq!(text(response).await, "again");
        }
    }

    #[tokio::test]
    async fn calls_one_after_another_share_one_connection() {
        let (uri, accepted) = echo_server(false).await;
        let pool = pool(&uri);
        call(&pool, &uri, 5).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_whose_answer_is_still_arriving_is_not_taken() {
        let (uri, accepted) = echo_server(false).await;
        let pool = pool(&uri);
        let unfinished = pool.send(post(&uri, "hold")).await.unwrap();
        let second = pool.send(post(&uri, "second")).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(text(second).await, "second");
        // The unfinished answer's connection cannot carry another request; the other can.
        drop(unfinished);
        call(&pool, &uri, 3).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    /// The upstream closes each connection after its answer, without saying so: a call must
    /// not fail on a connection closed while idle, whether the pool has noticed the close
    /// (the connection is dropped) or not (the unsent request is sent on a new one).
    #[tokio::test]
    async fn a_connection_the_upstream_closed_while_idle_is_not_used() {
        let (uri, accepted) = echo_server(true).await;
        let pool = pool(&uri);
        call(&pool, &uri, 20).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 20);
    }
}
