//! An upstream that is a local program speaking MCP's stdio transport: newline-delimited
//! JSON-RPC on its stdin and stdout, its stderr for logs. A stdio server serves one client, so
//! each gateway session gets a child of its own, started by initialize and stopped by DELETE,
//! idle expiry, its death or the gateway's.
//!
//! The child's answers come back as `Reply` like an HTTP upstream's: a request gets a stream of
//! what the child writes until the response under its id (progress, server requests), anything
//! written while no request is waiting goes to the session's GET stream, and the child's session
//! id is the gateway's own name for the child.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use http::{HeaderValue, StatusCode};
use rand::RngCore;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;

use super::{EventStream, Placement, Reply, UpstreamError};
use crate::protocol::{code, peek, SseEvent};

/// The program an upstream session runs, and what it gets of the world.
#[derive(Debug, Clone)]
pub struct UpstreamCommand {
    pub program: String,
    pub args: Vec<String>,
    /// The child's whole environment besides `PATH`: the gateway's own (its keys and tokens)
    /// is never passed on.
    pub env: Vec<(String, String)>,
}

/// Messages a child wrote while nothing was waiting for them, kept for the session's GET
/// stream; past this many the oldest are dropped.
const BACKLOG: usize = 256;

pub struct StdioUpstream {
    command: UpstreamCommand,
    /// Shared with each child's reader, which takes its child out when it ends.
    children: Arc<DashMap<String, Arc<Session>>>,
    max_line_bytes: usize,
    timeout: Duration,
    shown: String,
}

/// One child and the exchanges waiting on what it writes.
struct Session {
    id: String,
    stdin: tokio::sync::Mutex<ChildStdin>,
    routes: Mutex<Routes>,
    process: tokio::sync::Mutex<Child>,
}

#[derive(Default)]
struct Routes {
    /// Requests waiting for their response, oldest first: (id as JSON text, where to send).
    waiting: VecDeque<(
        String,
        mpsc::UnboundedSender<Result<SseEvent, UpstreamError>>,
    )>,
    /// The session's GET stream, once opened; before that, what it will be sent.
    stream: Option<mpsc::UnboundedSender<Result<SseEvent, UpstreamError>>>,
    backlog: VecDeque<SseEvent>,
    /// Set when the child is gone: why, for every later exchange.
    ended: Option<String>,
}

impl StdioUpstream {
    pub fn new(command: UpstreamCommand, max_line_bytes: usize, timeout: Duration) -> Self {
        let shown = format!("stdio:{}", command.program);
        Self {
            command,
            children: Arc::default(),
            max_line_bytes,
            timeout,
            shown,
        }
    }

    /// The program, as logs and errors name the upstream.
    pub fn url(&self) -> &str {
        &self.shown
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Writes one message to the session's child (a new child for a message without a session:
    /// initialize). A request is answered with a stream that ends with its response.
    pub async fn post(
        &self,
        message: Bytes,
        placement: Placement<'_>,
    ) -> Result<Reply, UpstreamError> {
        let session = match placement.session_id {
            None => self.start()?,
            Some(id) => match self.children.get(id.to_str().unwrap_or_default()) {
                Some(session) => session.clone(),
                // The child is gone: the session is unknown, as an HTTP upstream says it.
                None => return Ok(session_gone(&message)),
            },
        };
        let session_id = HeaderValue::from_str(&session.id).ok();
        let request_id = peek::request_id(&message);
        let answers = request_id.map(|id| session.wait_for(id));
        let mut line = Vec::with_capacity(message.len() + 1);
        line.extend_from_slice(&message);
        line.push(b'\n');
        if let Err(err) = session.stdin.lock().await.write_all(&line).await {
            self.children.remove(&session.id);
            return Err(UpstreamError::ProcessGone(format!(
                "{}: could not write to it: {err}",
                self.shown
            )));
        }
        Ok(match answers {
            Some(answers) => Reply::Stream {
                events: answers,
                session_id,
            },
            None => Reply::Accepted {
                status: StatusCode::ACCEPTED,
            },
        })
    }

    /// The session's stream of what its child writes unasked (one GET at a time).
    pub fn open_stream(&self, placement: Placement<'_>) -> Result<EventStream, StatusCode> {
        let id = placement.session_id.and_then(|id| id.to_str().ok());
        let Some(session) = id.and_then(|id| self.children.get(id)) else {
            return Err(StatusCode::NOT_FOUND);
        };
        let (sender, received) = mpsc::unbounded_channel();
        let mut routes = session.routes();
        if routes.stream.as_ref().is_some_and(|open| !open.is_closed()) {
            return Err(StatusCode::CONFLICT);
        }
        for event in routes.backlog.drain(..) {
            let _ = sender.send(Ok(event));
        }
        routes.stream = Some(sender);
        Ok(Box::pin(
            tokio_stream::wrappers::UnboundedReceiverStream::new(received),
        ))
    }

    /// Stops the session's child and waits for it to exit.
    pub async fn end_session(&self, placement: Placement<'_>) -> StatusCode {
        let id = placement.session_id.and_then(|id| id.to_str().ok());
        let Some((_, session)) = id.and_then(|id| self.children.remove(id)) else {
            return StatusCode::NOT_FOUND;
        };
        let mut process = session.process.lock().await;
        let _ = process.kill().await;
        StatusCode::NO_CONTENT
    }

    fn start(&self) -> Result<Arc<Session>, UpstreamError> {
        let mut command = Command::new(&self.command.program);
        command
            .args(&self.command.args)
            .env_clear()
            .envs(std::env::var_os("PATH").map(|path| ("PATH", path)))
            .envs(self.command.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|err| {
            UpstreamError::ProcessGone(format!("{}: could not start it: {err}", self.shown))
        })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(UpstreamError::ProcessGone(format!(
                "{}: no pipes to it",
                self.shown
            )));
        };
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let session = Arc::new(Session {
            id: hex::encode(bytes),
            stdin: tokio::sync::Mutex::new(stdin),
            routes: Mutex::default(),
            process: tokio::sync::Mutex::new(child),
        });
        self.children.insert(session.id.clone(), session.clone());
        tokio::spawn(read_stdout(
            session.clone(),
            self.children.clone(),
            stdout,
            self.max_line_bytes,
            self.shown.clone(),
        ));
        let id = session.id.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(upstream_session = %id, "upstream stderr: {line}");
            }
        });
        Ok(session)
    }
}

impl Session {
    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stream of what the child writes from now until the response to `id`.
    fn wait_for(&self, id: String) -> EventStream {
        let (sender, received) = mpsc::unbounded_channel();
        let mut routes = self.routes();
        match &routes.ended {
            Some(why) => {
                let _ = sender.send(Err(UpstreamError::ProcessGone(why.clone())));
            }
            None => routes.waiting.push_back((id, sender)),
        }
        Box::pin(tokio_stream::wrappers::UnboundedReceiverStream::new(
            received,
        ))
    }

    /// Routes one line the child wrote: a response to the request waiting for it (which then
    /// waits no more); anything else to the oldest waiting request, or to the GET stream.
    fn route(&self, line: String) {
        let event = SseEvent::message(line);
        let mut routes = self.routes();
        if let Some(id) = peek::response_id(event.text()) {
            if let Some(at) = routes
                .waiting
                .iter()
                .position(|(waiting, _)| *waiting == id)
            {
                if let Some((_, sender)) = routes.waiting.remove(at) {
                    let _ = sender.send(Ok(event));
                }
                return;
            }
        } else if let Some((_, sender)) = routes.waiting.front() {
            let _ = sender.send(Ok(event));
            return;
        }
        // Unasked, or a response nobody waits for: the GET stream's rules decide.
        match &routes.stream {
            Some(stream) if !stream.is_closed() => {
                let _ = stream.send(Ok(event));
            }
            _ => {
                if routes.backlog.len() == BACKLOG {
                    routes.backlog.pop_front();
                }
                routes.backlog.push_back(event);
            }
        }
    }

    /// The child is gone: every exchange still waiting on it is told why.
    fn end(&self, why: String) {
        let mut routes = self.routes();
        for (_, sender) in routes.waiting.drain(..) {
            let _ = sender.send(Err(UpstreamError::ProcessGone(why.clone())));
        }
        if let Some(stream) = routes.stream.take() {
            let _ = stream.send(Err(UpstreamError::ProcessGone(why.clone())));
        }
        routes.ended = Some(why);
    }
}

/// The answer to a message for a session whose child has ended: 404 with the request's error,
/// which ends the gateway's session too.
fn session_gone(message: &[u8]) -> Reply {
    let body = match peek::request_id(message) {
        Some(id) => Bytes::from(format!(
            r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{},"message":"session not found: its upstream process has ended; send initialize to start a new one"}}}}"#,
            code::SESSION_NOT_FOUND
        )),
        None => Bytes::new(),
    };
    Reply::Json {
        status: StatusCode::NOT_FOUND,
        body,
        session_id: None,
    }
}

/// Reads the child's stdout line by line, each at most `max` bytes, until it closes; then the
/// session ends with the child's exit status.
async fn read_stdout(
    session: Arc<Session>,
    children: Arc<DashMap<String, Arc<Session>>>,
    stdout: ChildStdout,
    max: usize,
    shown: String,
) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    let why = loop {
        line.clear();
        let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
        match (&mut reader).take(limit).read_until(b'\n', &mut line).await {
            Ok(0) => break None,
            Ok(_) if line.last() != Some(&b'\n') && line.len() > max => {
                break Some(format!(
                    "{shown} wrote a line longer than {max} bytes (--max-event-bytes); it was stopped"
                ));
            }
            Ok(_) => {
                let text = String::from_utf8_lossy(line.trim_ascii_end()).into_owned();
                if !text.is_empty() {
                    session.route(text);
                }
            }
            Err(err) => break Some(format!("{shown}: reading its output failed: {err}")),
        }
    };
    let mut process = session.process.lock().await;
    if why.is_some() {
        let _ = process.kill().await;
    }
    let status = process.wait().await;
    let why = why.unwrap_or_else(|| match status {
        Ok(status) => format!("{shown} exited ({status}) before it answered"),
        Err(err) => format!("{shown} ended: {err}"),
    });
    tracing::warn!(upstream_session = %session.id, "{why}");
    // Out of the map before anyone hears why: their next message finds the session gone.
    children.remove(&session.id);
    session.end(why);
}
