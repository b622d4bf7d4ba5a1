//! The audit log: one JSON line per decision, written before the answer leaves the gateway.
//!
//! Records are queued on the call path and appended by a writer thread of their own, in groups
//! (`writer.rs`, group commit); each answer waits for the group holding its records, so a
//! record the agent saw acknowledged is in the kernel's hands (and on the disk with
//! `--audit-fsync always`), while a file system that blocks stalls that thread, not the event
//! loops.
//!
//! Rotation: SIGHUP reopens the path (`reopen`), so logrotate can rename the file and have the
//! next record start a new one, without copytruncate's window of lost lines. `--audit -` writes
//! to standard output instead.

mod writer;

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub use writer::{answering, AuditBarrier, Fsync, FSYNC_INTERVAL};
use writer::{GroupWriter, Sink};

pub struct AuditLog {
    /// `None` for standard output.
    path: Option<PathBuf>,
    writer: GroupWriter,
    include_arguments: bool,
}

/// The path that means standard output.
const STDOUT: &str = "-";

/// One decision. Borrowed fields: a record is built, written and dropped on the call path.
#[derive(Debug)]
pub struct AuditRecord<'a> {
    pub agent: Option<&'a str>,
    pub session: Option<&'a str>,
    pub method: &'a str,
    pub tool: Option<&'a str>,
    pub decision: AuditDecision,
    pub rule: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub upstream_status: Option<u16>,
    pub latency: Option<Duration>,
    /// The approval a record is about, and who decided it.
    pub approval: Option<&'a str>,
    pub reviewer: Option<&'a str>,
    pub arguments: Option<&'a Value>,
    /// Matches the result rules replaced in the answer (records of decision `redacted`).
    pub redactions: Option<u64>,
}

impl<'a> AuditRecord<'a> {
    /// A record of `decision` on `method` that says nothing else yet: the fields a record
    /// has are set on it (`AuditRecord { tool: Some(..), ..AuditRecord::of(..) }`).
    pub fn of(method: &'a str, decision: AuditDecision) -> Self {
        Self {
            agent: None,
            session: None,
            method,
            tool: None,
            decision,
            rule: None,
            reason: None,
            upstream_status: None,
            latency: None,
            approval: None,
            reviewer: None,
            arguments: None,
            redactions: None,
        }
    }
}

/// What became of a message or an approval, as the record's `decision` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditDecision {
    /// Forwarded (the upstream's status is in the record).
    Allow,
    Deny,
    UnknownTool,
    InvalidArguments,
    RateLimited,
    /// Allowed, but the upstream could not be reached or did not answer.
    UpstreamError,
    /// Deciding failed; the message was refused.
    InternalError,
    /// Refused because the shared state store (Redis) could not be reached.
    StateUnavailable,
    /// A call was held for a person's decision.
    ApprovalPending,
    /// A held call went through on an approval granted earlier.
    ApprovalUsed,
    Approved,
    Rejected,
    Expired,
    /// A call under an approval rule was not queued: its caller has too many calls waiting, or
    /// the call is larger than a held call may be.
    ApprovalLimited,
    /// Refused at the edge (401): a key no agent has, or none where one is required.
    Unauthorized,
    /// Refused at the edge (404): an unknown or ended session, or another agent's.
    UnknownSession,
    /// A pinned tool's definition changed (or the upstream lists two of that name): recorded
    /// when the gateway first sees it, and for each call refused because of it.
    PinMismatch,
    /// The result rules changed an answer: secrets redacted (`redactions` counts them) or the
    /// result withheld over `max_bytes`.
    Redacted,
}

impl AuditDecision {
    /// The name in the record: these strings are the audit format, and never change.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::UnknownTool => "unknown_tool",
            Self::InvalidArguments => "invalid_arguments",
            Self::RateLimited => "rate_limited",
            Self::UpstreamError => "upstream_error",
            Self::InternalError => "internal_error",
            Self::StateUnavailable => "state_unavailable",
            Self::ApprovalPending => "approval_pending",
            Self::ApprovalUsed => "approval_used",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::ApprovalLimited => "approval_limited",
            Self::Unauthorized => "unauthorized",
            Self::UnknownSession => "unknown_session",
            Self::PinMismatch => "pin_mismatch",
            Self::Redacted => "redacted",
        }
    }
}

/// Records of one kind allowed a minute (a fixed window), and how many were left out since the
/// last one allowed. The clock is handed in.
#[derive(Debug)]
pub struct RefusalBudget {
    per_minute: u32,
    state: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    started: Option<Instant>,
    allowed: u32,
    left_out: u64,
}

impl RefusalBudget {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            state: Mutex::default(),
        }
    }

    /// `Some(left out before this one)` when one more may be recorded now.
    pub fn admit(&self, now: Instant) -> Option<u64> {
        let mut window = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let expired = window.started.is_none_or(|started| {
            now.saturating_duration_since(started) >= Duration::from_secs(60)
        });
        if expired {
            window.started = Some(now);
            window.allowed = 0;
        }
        if window.allowed < self.per_minute {
            window.allowed += 1;
            Some(std::mem::take(&mut window.left_out))
        } else {
            window.left_out += 1;
            None
        }
    }
}

impl AuditLog {
    /// Opens `path` for appending (created mode 0600: records name agents and what they did),
    /// or standard output for `-`, and starts the thread that writes to it.
    pub fn open(path: &Path, include_arguments: bool, fsync: Fsync) -> std::io::Result<Self> {
        let (path, sink) = if path.as_os_str() == STDOUT {
            (None, Sink::Stdout)
        } else {
            (Some(path.to_owned()), Sink::File(open_append(path)?))
        };
        Ok(Self {
            path,
            writer: GroupWriter::start(sink, fsync)?,
            include_arguments,
        })
    }

    /// Opens the path again and writes the records queued from now on there (SIGHUP, after
    /// logrotate renamed the file). On failure the old file keeps receiving records.
    pub fn reopen(&self) -> std::io::Result<()> {
        if let Some(path) = &self.path {
            self.writer.switch_to(Sink::File(open_append(path)?));
        }
        Ok(())
    }

    /// The file written to, or `None` for standard output.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Queues the record; an answer that depends on it waits on [`AuditLog::barrier`].
    pub fn append(&self, record: &AuditRecord<'_>) {
        // One buffer per thread, reused: a record costs no allocation of its own.
        thread_local! {
            static BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
        }
        BUFFER.with_borrow_mut(|line| {
            line.clear();
            self.encode(record, line);
            self.writer.append(line);
        })
    }

    /// What answers wait on for their records to be written.
    pub fn barrier(&self) -> AuditBarrier {
        self.writer.barrier()
    }

    /// Resolves once every record queued so far is written.
    pub async fn written(&self) {
        if let Some(written) = self.barrier().pending() {
            written.await;
        }
    }

    /// The record as one JSON line. Written by hand: the keys are constants, and this runs for
    /// every call (a derived `Serialize` cost about twice as much).
    ///
    /// Every field is capped ([`TEXT_CAP`], [`ARGUMENTS_CAP`]) and a cut one ends with a marker
    /// saying how long it was, so what an agent sends cannot make a record of any size. And
    /// every line survives any line splitter: besides the control characters JSON escapes
    /// anyway, U+0085, U+2028 and U+2029 (line breaks to Python's `splitlines` and to some
    /// JavaScript readers) are written as `\u` escapes too.
    fn encode(&self, record: &AuditRecord<'_>, line: &mut Vec<u8>) {
        line.extend_from_slice(br#"{"time":""#);
        write_time(line, SystemTime::now());
        line.push(b'"');
        text(line, br#","agent":"#, record.agent);
        text(line, br#","session":"#, record.session);
        text(line, br#","method":"#, Some(record.method));
        text(line, br#","tool":"#, record.tool);
        text(line, br#","decision":"#, Some(record.decision.as_str()));
        text(line, br#","rule":"#, record.rule);
        text(line, br#","reason":"#, record.reason);
        member(line, br#","upstream_status":"#, &record.upstream_status);
        text(line, br#","approval":"#, record.approval);
        text(line, br#","reviewer":"#, record.reviewer);
        let latency_ms = record
            .latency
            .map(|d| (d.as_secs_f64() * 1e6).round() / 1e3);
        member(line, br#","latency_ms":"#, &latency_ms);
        if let Some(redactions) = record.redactions {
            member(line, br#","redactions":"#, &redactions);
        }
        match record.arguments.filter(|_| self.include_arguments) {
            Some(arguments) => self::arguments(line, arguments),
            None => line.extend_from_slice(br#","arguments":null"#),
        }
        line.extend_from_slice(b"}\n");
    }
}

/// `time` as RFC 3339 in UTC with milliseconds (`2026-11-30T12:49:06.870Z`). A thread formats
/// the date and time of day once per second and writes only the milliseconds after that.
fn write_time(line: &mut Vec<u8>, time: SystemTime) {
    thread_local! {
        // The second last formatted on this thread, and its text up to the milliseconds.
        static SECOND: Cell<(u64, [u8; 20])> = const { Cell::new((u64::MAX, [0; 20])) };
    }
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let second = since_epoch.as_secs();
    let (formatted, mut prefix) = SECOND.get();
    if formatted != second {
        // `2026-11-30T12:49:06Z`: its first 19 bytes, then the decimal point.
        let whole = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(second));
        prefix[..19].copy_from_slice(&whole.to_string().as_bytes()[..19]);
        prefix[19] = b'.';
        SECOND.set((second, prefix));
    }
    let millis = since_epoch.subsec_millis();
    line.extend_from_slice(&prefix);
    line.extend_from_slice(&[
        b'0' + (millis / 100) as u8,
        b'0' + (millis / 10 % 10) as u8,
        b'0' + (millis % 10) as u8,
        b'Z',
    ]);
}

/// The most bytes of one text field (names, ids, reasons) a record holds.
pub const TEXT_CAP: usize = 4 * 1024;
/// The most bytes of arguments (as JSON text) a record holds.
pub const ARGUMENTS_CAP: usize = 64 * 1024;

/// `text` cut to at most `cap` bytes (on a character boundary), with a marker saying so.
fn capped(text: &str, cap: usize) -> Cow<'_, str> {
    if text.len() <= cap {
        return text.into();
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[truncated: {} bytes]", &text[..end], text.len()).into()
}

/// A text field; `key` is the member's name as written, with its comma, quotes and colon
/// (`,"tool":`), so that a record's fixed parts are copied, not escaped, each time. Inlined
/// into each of its nine calls, its key's length is a constant and the copy a few moves instead
/// of a call to `memcpy` (`bench/instructions`: ~300 a call).
#[inline(always)]
fn text(line: &mut Vec<u8>, key: &[u8], value: Option<&str>) {
    line.extend_from_slice(key);
    match value {
        None => line.extend_from_slice(b"null"),
        // Names and ids are printable ASCII: written between quotes as they are, without the
        // serializer's byte-by-byte escaping (a tenth of a record's cost with a sealed id).
        Some(value) if value.len() <= TEXT_CAP && is_plain(value) => {
            line.push(b'"');
            line.extend_from_slice(value.as_bytes());
            line.push(b'"');
        }
        Some(value) => write_line_safe(line, &capped(value, TEXT_CAP)),
    }
}

/// Printable ASCII without `"` or `\`: JSON string text as it is, and no reader's line break.
/// Checked without an early exit, so that the compiler checks many bytes at once.
fn is_plain(text: &str) -> bool {
    text.bytes().fold(true, |plain, b| {
        plain & (b' '..=b'~').contains(&b) & (b != b'"') & (b != b'\\')
    })
}

/// Arguments over the cap are written as their cut JSON text (a string), with the marker.
fn arguments(line: &mut Vec<u8>, arguments: &Value) {
    let mut encoded = Vec::new();
    write_line_safe(&mut encoded, arguments);
    line.extend_from_slice(br#","arguments":"#);
    if encoded.len() <= ARGUMENTS_CAP {
        line.extend_from_slice(&encoded);
    } else {
        let json = String::from_utf8_lossy(&encoded);
        write_line_safe(line, &capped(&json, ARGUMENTS_CAP));
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// A member of any other value; `key` as [`text`] takes it.
fn member<T: serde::Serialize + ?Sized>(line: &mut Vec<u8>, key: &[u8], value: &T) {
    line.extend_from_slice(key);
    write_line_safe(line, value);
}

fn write_line_safe<T: serde::Serialize + ?Sized>(line: &mut Vec<u8>, value: &T) {
    let mut serializer = serde_json::Serializer::with_formatter(&mut *line, LineSafe);
    value
        .serialize(&mut serializer)
        .expect("strings, numbers and JSON values serialise");
}

/// serde_json's compact output, with the characters some readers take for line breaks escaped.
struct LineSafe;

impl serde_json::ser::Formatter for LineSafe {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // All three start with byte C2 or E2: most text has neither and is written at once
        // (`str::find` on a set of characters checks them one character at a time).
        if memchr::memchr2(0xC2, 0xE2, fragment.as_bytes()).is_none() {
            return writer.write_all(fragment.as_bytes());
        }
        let mut rest = fragment;
        while let Some(at) = rest.find(['\u{85}', '\u{2028}', '\u{2029}']) {
            writer.write_all(&rest.as_bytes()[..at])?;
            let c = rest[at..].chars().next().expect("a character starts here");
            write!(writer, "\\u{:04x}", c as u32)?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_humantime_writes_them_within_a_second_and_across_seconds() {
        // Steps of 1 ms to 7 days from 2026-11-30, each written twice (the second from the
        // thread's formatted second), and back in time: the cached second is only ever reused
        // for the same second.
        let start = UNIX_EPOCH + Duration::from_millis(1_796_038_146_870);
        let steps = [
            1,
            7,
            130,
            999,
            1000,
            1001,
            59_999,
            3_600_000,
            86_399_999,
            604_800_000,
        ];
        let mut time = start;
        for (i, step) in steps.iter().cycle().take(400).enumerate() {
            let step = Duration::from_millis(*step);
            time = match i % 5 {
                4 => time.checked_sub(step).unwrap(),
                _ => time + step,
            };
            for _ in 0..2 {
                let mut line = Vec::new();
                write_time(&mut line, time);
                let expected = humantime::format_rfc3339_millis(time).to_string();
                assert_eq!(String::from_utf8(line).unwrap(), expected);
            }
        }
    }

    fn record<'a>(arguments: Option<&'a Value>) -> AuditRecord<'a> {
        AuditRecord {
            agent: Some("bot"),
            session: Some("s1"),
            tool: Some("get_price"),
            rule: Some("tools.get_price"),
            upstream_status: Some(200),
            latency: Some(Duration::from_micros(1500)),
            arguments,
            ..AuditRecord::of("tools/call", AuditDecision::Allow)
        }
    }

    /// Appends `record` to the log at `path` (a new writer) and waits until it is written.
    async fn write_one(path: &Path, include_arguments: bool, record: &AuditRecord<'_>) {
        let log = AuditLog::open(path, include_arguments, Fsync::Never).unwrap();
        log.append(record);
        log.written().await;
    }

    #[tokio::test]
    async fn writes_one_json_line_per_record_with_arguments_redacted_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let args = serde_json::json!({"symbol": "BTCUSDT"});
        let log = AuditLog::open(&path, false, Fsync::Never).unwrap();
        log.append(&record(Some(&args)));
        log.append(&record(Some(&args)));
        log.written().await;
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

    #[tokio::test]
    async fn is_created_private_and_reopened_at_its_path_after_a_rename() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let rotated = dir.path().join("audit.jsonl.1");
        let log = AuditLog::open(&path, false, Fsync::Always).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        log.append(&record(None));
        std::fs::rename(&path, &rotated).unwrap();
        log.append(&record(None));
        log.reopen().unwrap();
        log.append(&record(None));
        log.written().await;
        let lines = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count();
        assert_eq!(
            lines(&rotated),
            2,
            "records before the reopen stay in the renamed file"
        );
        assert_eq!(lines(&path), 1, "records after it start the new file");
    }

    #[test]
    fn a_dash_means_standard_output_not_a_file_named_dash() {
        let log = AuditLog::open(Path::new("-"), false, Fsync::Never).unwrap();
        assert!(log.path().is_none());
    }

    #[tokio::test]
    async fn includes_arguments_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let args = serde_json::json!({"symbol": "BTCUSDT"});
        write_one(&path, true, &record(Some(&args))).await;
        let line: Value =
            serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
        assert_eq!(line["arguments"]["symbol"], "BTCUSDT");
    }

    #[test]
    fn only_printable_ascii_without_quotes_or_backslashes_is_written_as_it_is() {
        assert!(is_plain("get_price") && is_plain("v1.AbC-_~ x") && is_plain(""));
        for escaped in [
            "a\"b",
            "a\\b",
            "a\nb",
            "a\u{7f}b",
            "caf\u{e9}",
            "a\u{2028}b",
        ] {
            assert!(!is_plain(escaped), "{escaped:?}");
        }
    }

    #[tokio::test]
    async fn text_from_agents_and_policies_stays_inside_its_field_and_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let reason = "refused: \"quotes\",\nnew lines\u{2028} and \\ slashes";
        let mut denied = record(None);
        denied.decision = AuditDecision::Deny;
        denied.reason = Some(reason);
        denied.tool = Some("get_price\",\"decision\":\"allow");
        write_one(&path, false, &denied).await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(line["reason"], reason);
        assert_eq!(line["decision"], "deny");
        assert_eq!(line["tool"], "get_price\",\"decision\":\"allow");
    }

    #[tokio::test]
    async fn line_breaks_of_any_reader_are_escaped_so_every_splitter_sees_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let reason = "a\u{2028}b\u{2029}c\u{85}d\re\u{b}f\u{c}g\u{1c}h";
        let mut denied = record(None);
        denied.reason = Some(reason);
        write_one(&path, false, &denied).await;
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        // Python's str.splitlines: \n \r \v \f \x1c-\x1e \x85 \u2028 \u2029.
        let breaks = [
            '\r', '\u{b}', '\u{c}', '\u{1c}', '\u{1d}', '\u{1e}', '\u{85}', '\u{2028}', '\u{2029}',
        ];
        assert!(!text.contains(breaks), "{text:?}");
        assert_eq!(text.matches('\n').count(), 1);
        assert!(text.contains(r"\u2028") && text.contains(r"\u2029") && text.contains(r"\u0085"));
        let line: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(line["reason"], reason);
    }

    #[tokio::test]
    async fn every_field_is_capped_with_a_marker_saying_how_long_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let name = "n".repeat(1 << 20);
        let reason = format!("Unknown tool: {name}");
        let args = serde_json::json!({"blob": "é".repeat(1 << 19)});
        let mut unknown = record(Some(&args));
        unknown.decision = AuditDecision::UnknownTool;
        unknown.tool = Some(&name);
        unknown.reason = Some(&reason);
        unknown.session = Some(&name);
        write_one(&path, true, &unknown).await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.len() < 3 * TEXT_CAP + ARGUMENTS_CAP + 1024,
            "{} bytes",
            text.len()
        );
        let line: Value = serde_json::from_str(&text).unwrap();
        let tool = line["tool"].as_str().unwrap();
        assert!(tool.starts_with("nnnn"));
        assert!(tool.ends_with("…[truncated: 1048576 bytes]"));
        assert!(line["reason"]
            .as_str()
            .unwrap()
            .ends_with("…[truncated: 1048590 bytes]"));
        let arguments = line["arguments"].as_str().unwrap();
        assert!(arguments.starts_with(r#"{"blob":"éé"#));
        assert!(arguments.ends_with("…[truncated: 1048587 bytes]"));
        // Within the caps, arguments stay JSON.
        let small = serde_json::json!({"symbol": "BTCUSDT"});
        write_one(&path, true, &record(Some(&small))).await;
        let last: Value = serde_json::from_str(
            std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .last()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(last["arguments"], small);
    }

    #[test]
    fn a_flood_of_refusals_is_recorded_only_so_often_and_the_next_record_counts_the_rest() {
        let budget = RefusalBudget::new(2);
        let start = Instant::now();
        assert_eq!(budget.admit(start), Some(0));
        assert_eq!(budget.admit(start), Some(0));
        for _ in 0..1000 {
            assert_eq!(budget.admit(start + Duration::from_secs(30)), None);
        }
        assert_eq!(budget.admit(start + Duration::from_secs(60)), Some(1000));
        assert_eq!(budget.admit(start + Duration::from_secs(61)), Some(0));
        assert_eq!(budget.admit(start + Duration::from_secs(62)), None);
    }
}
