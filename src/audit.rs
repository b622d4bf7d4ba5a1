//! The audit log: one JSON line per decision.
//!
//! By default each record is one `write` on a file opened with O_APPEND, done before the answer
//! leaves the gateway: the kernel places concurrent appends whole and one after another, so
//! there is no lock on the call path, and a record the agent saw acknowledged is in the kernel's
//! hands even if the gateway is then killed.
//!
//! With a flush interval, records are queued instead and a writer thread appends them together
//! once per interval: one `write` for many records, at the price of losing at most one
//! interval's records if the process dies without stopping (a clean stop flushes them).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde_json::Value;

pub struct AuditLog {
    sink: Sink,
    include_arguments: bool,
}

enum Sink {
    Direct(File),
    Batched {
        queue: SyncSender<Queued>,
        writer: JoinHandle<()>,
    },
}

enum Queued {
    Line(Vec<u8>),
    /// Answered once every line queued before it is written.
    Flush(mpsc::Sender<()>),
}

/// Records queued before a sender waits for the writer (memory bound: ~300 bytes a record).
const QUEUE_RECORDS: usize = 1 << 16;

/// One decision. Borrowed fields: a record is built, written and dropped on the call path.
#[derive(Debug)]
pub struct AuditRecord<'a> {
    pub agent: Option<&'a str>,
    pub session: Option<&'a str>,
    pub method: &'a str,
    pub tool: Option<&'a str>,
    /// allow, deny, unknown_tool, invalid_arguments, rate_limited, approval_pending, approved,
    /// rejected, expired, upstream_error.
    pub decision: &'a str,
    pub rule: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub upstream_status: Option<u16>,
    pub latency: Option<Duration>,
    /// The approval a record is about, and who decided it.
    pub approval: Option<&'a str>,
    pub reviewer: Option<&'a str>,
    pub arguments: Option<&'a Value>,
}

impl AuditLog {
    /// `flush_every`: zero writes each record by itself; more batches them (see the module).
    pub fn open(
        path: &Path,
        include_arguments: bool,
        flush_every: Duration,
    ) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let sink = if flush_every.is_zero() {
            Sink::Direct(file)
        } else {
            let (queue, queued) = mpsc::sync_channel(QUEUE_RECORDS);
            let writer = std::thread::Builder::new()
                .name("mcpgate-audit".into())
                .spawn(move || write_batches(file, queued, flush_every))?;
            Sink::Batched { queue, writer }
        };
        Ok(Self {
            sink,
            include_arguments,
        })
    }

    pub fn write(&self, record: &AuditRecord<'_>) -> std::io::Result<()> {
        match &self.sink {
            Sink::Direct(file) => {
                // One buffer per thread, reused: a record costs no allocation of its own.
                thread_local! {
                    static BUFFER: std::cell::RefCell<Vec<u8>> =
                        std::cell::RefCell::new(Vec::with_capacity(512));
                }
                BUFFER.with_borrow_mut(|line| {
                    line.clear();
                    self.encode(record, line);
                    (&*file).write_all(line)
                })
            }
            Sink::Batched { queue, .. } => {
                let mut line = Vec::with_capacity(384);
                self.encode(record, &mut line);
                queue.send(Queued::Line(line)).map_err(|_| writer_gone())
            }
        }
    }

    /// Returns once every record written so far is in the file (a no-op without batching).
    pub fn flush(&self) -> std::io::Result<()> {
        let Sink::Batched { queue, writer } = &self.sink else {
            return Ok(());
        };
        let (done, flushed) = mpsc::channel();
        queue.send(Queued::Flush(done)).map_err(|_| writer_gone())?;
        writer.thread().unpark();
        flushed.recv().map_err(|_| writer_gone())
    }

    /// The record as one JSON line. Written by hand: the keys are constants, and this runs for
    /// every call (a derived `Serialize` cost about twice as much).
    fn encode(&self, record: &AuditRecord<'_>, line: &mut Vec<u8>) {
        let time = humantime::format_rfc3339_millis(SystemTime::now());
        let _ = write!(line, r#"{{"time":"{time}""#);
        member(line, "agent", &record.agent);
        member(line, "session", &record.session);
        member(line, "method", record.method);
        member(line, "tool", &record.tool);
        member(line, "decision", record.decision);
        member(line, "rule", &record.rule);
        member(line, "reason", &record.reason);
        member(line, "upstream_status", &record.upstream_status);
        member(line, "approval", &record.approval);
        member(line, "reviewer", &record.reviewer);
        let latency_ms = record
            .latency
            .map(|d| (d.as_secs_f64() * 1e6).round() / 1e3);
        member(line, "latency_ms", &latency_ms);
        let arguments = record.arguments.filter(|_| self.include_arguments);
        member(line, "arguments", &arguments);
        line.extend_from_slice(b"}\n");
    }
}

/// Dropping the log flushes it: nothing queued is lost on the way out.
impl Drop for AuditLog {
    fn drop(&mut self) {
        if let Err(err) = self.flush() {
            tracing::error!(error = %err, "could not flush the audit log");
        }
    }
}

fn member<T: serde::Serialize + ?Sized>(line: &mut Vec<u8>, key: &str, value: &T) {
    line.push(b',');
    line.push(b'"');
    line.extend_from_slice(key.as_bytes());
    line.extend_from_slice(b"\":");
    serde_json::to_writer(&mut *line, value).expect("strings, numbers and JSON values serialise");
}

fn writer_gone() -> std::io::Error {
    std::io::Error::other("the audit writer thread has stopped")
}

/// The writer thread: every `interval` (or when asked to flush), appends what was queued in one
/// `write`. Ends when the log is dropped, after writing what is left.
fn write_batches(file: File, queued: Receiver<Queued>, interval: Duration) {
    let mut batch = Vec::with_capacity(1 << 16);
    let mut flushes = Vec::new();
    loop {
        std::thread::park_timeout(interval);
        let open = loop {
            match queued.try_recv() {
                Ok(Queued::Line(line)) => batch.extend_from_slice(&line),
                Ok(Queued::Flush(done)) => flushes.push(done),
                Err(TryRecvError::Empty) => break true,
                Err(TryRecvError::Disconnected) => break false,
            }
        };
        if !batch.is_empty() {
            if let Err(err) = (&file).write_all(&batch) {
                tracing::error!(error = %err, records = batch.iter().filter(|b| **b == b'\n').count(), "could not write the audit log");
            }
            batch.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
        if !open {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(arguments: Option<&'a Value>) -> AuditRecord<'a> {
        AuditRecord {
            agent: Some("bot"),
            session: Some("s1"),
            method: "tools/call",
            tool: Some("get_price"),
            decision: "allow",
            rule: Some("tools.get_price"),
            reason: None,
            upstream_status: Some(200),
            latency: Some(Duration::from_micros(1500)),
            approval: None,
            reviewer: None,
            arguments,
        }
    }

    #[test]
    fn writes_one_json_line_per_record_with_arguments_redacted_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let args = serde_json::json!({"symbol": "BTCUSDT"});
        let log = AuditLog::open(&path, false, Duration::ZERO).unwrap();
        log.write(&record(Some(&args))).unwrap();
        log.write(&record(Some(&args))).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["tool"], "get_price");
        assert_eq!(lines[0]["latency_ms"], 1.5);
        assert_eq!(lines[0]["arguments"], Value::Null);
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn includes_arguments_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let args = serde_json::json!({"symbol": "BTCUSDT"});
        AuditLog::open(&path, true, Duration::ZERO)
            .unwrap()
            .write(&record(Some(&args)))
            .unwrap();
        let line: Value =
            serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
        assert_eq!(line["arguments"]["symbol"], "BTCUSDT");
    }

    #[test]
    fn batched_records_from_many_threads_are_all_written_whole_on_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        // Far longer than the test: only flush() can have written the records.
        let log = AuditLog::open(&path, false, Duration::from_secs(3600)).unwrap();
        std::thread::scope(|threads| {
            for _ in 0..4 {
                threads.spawn(|| {
                    for _ in 0..500 {
                        log.write(&record(None)).unwrap();
                    }
                });
            }
        });
        log.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2000);
        assert!(lines.iter().all(|line| line["decision"] == "allow"));
    }

    #[test]
    fn dropping_a_batched_log_writes_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path, false, Duration::from_secs(3600)).unwrap();
        log.write(&record(None)).unwrap();
        drop(log);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }
}
