//! The audit log: one JSON line per decision, appended before the answer leaves the gateway.
//!
//! Each record is one `write` on a file opened with O_APPEND: the kernel places concurrent
//! appends whole and one after another, so there is no lock on the call path, and a record the
//! agent saw acknowledged is in the kernel's hands even if the gateway is then killed.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;

pub struct AuditLog {
    file: File,
    include_arguments: bool,
}

/// One decision. Borrowed fields: a record is built, written and dropped on the call path.
#[derive(Debug, Serialize)]
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
    #[serde(skip)]
    pub latency: Option<Duration>,
    /// The approval a record is about, and who decided it.
    pub approval: Option<&'a str>,
    pub reviewer: Option<&'a str>,
    #[serde(skip)]
    pub arguments: Option<&'a Value>,
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(serialize_with = "rfc3339_millis")]
    time: SystemTime,
    #[serde(flatten)]
    record: &'a AuditRecord<'a>,
    latency_ms: Option<f64>,
    arguments: Option<&'a Value>,
}

impl AuditLog {
    pub fn open(path: &Path, include_arguments: bool) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file,
            include_arguments,
        })
    }

    pub fn write(&self, record: &AuditRecord<'_>) -> std::io::Result<()> {
        let line = Line {
            time: SystemTime::now(),
            record,
            latency_ms: record
                .latency
                .map(|d| (d.as_secs_f64() * 1e6).round() / 1e3),
            arguments: if self.include_arguments {
                record.arguments
            } else {
                None
            },
        };
        // One buffer per thread, reused: a record costs no allocation of its own.
        thread_local! {
            static BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
        }
        BUFFER.with_borrow_mut(|buffer| {
            buffer.clear();
            serde_json::to_writer(&mut *buffer, &line)?;
            buffer.push(b'\n');
            (&self.file).write_all(buffer)
        })
    }
}

fn rfc3339_millis<S: serde::Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*time))
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
        let log = AuditLog::open(&path, false).unwrap();
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
        AuditLog::open(&path, true)
            .unwrap()
            .write(&record(Some(&args)))
            .unwrap();
        let line: Value =
            serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
        assert_eq!(line["arguments"]["symbol"], "BTCUSDT");
    }
}
