//! Group commit: a thread of its own appends the queued records, one `write` per group, and
//! answers wait for the group that holds their records.
//!
//! A record is queued on the call path (a copy into a buffer under a lock held for that copy);
//! the writer thread takes everything queued at once, writes it in one `write`, then publishes how
//! far it has written. While it writes, the next group gathers. An answer leaves only once the
//! writer has passed every record queued before it ([`AuditBarrier`]), so the promise of a
//! synchronous write is kept — a record the agent saw acknowledged was handed to the kernel — but
//! a file system that blocks stalls the writer thread, not the event loops. (Measured in
//! bench/README.md: a synchronous `write` per record on an ext4 disk cost more CPU than the rest
//! of the gateway and about four context switches a call.)
//!
//! The writer wakes one task per event loop for each group, the loop's [`Relay`], which wakes the
//! loop's waiting answers: a task woken from another thread costs its loop a system call (tokio
//! writes the loop's `eventfd` for every such wake), one woken from its own loop costs none.

use std::cell::RefCell;
use std::fs::File;
use std::future::Future;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// When the audit file is flushed to the disk (`fdatasync`), beyond the kernel's page cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Fsync {
    /// Never: a record is the kernel's once written, and survives a crash of the gateway, not
    /// of the machine.
    #[default]
    Never,
    /// At most [`FSYNC_INTERVAL`] after a record is written: a machine crash loses at most
    /// that much, and answers never wait for the disk's flush.
    Interval,
    /// Before the answers of a group leave: nothing an agent saw answered is lost, at the cost of
    /// one flush per group.
    Always,
}

/// How long a written record may stay unflushed with [`Fsync::Interval`].
pub const FSYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Queued bytes past which appending blocks until the writer catches up. Answers wait for their
/// records, so the queue holds about one record per call in flight and rarely nears this; it
/// is reached only when the disk has stopped taking writes, and then holding the caller's
/// thread is the back-pressure there is left.
const QUEUE_CAP: usize = 8 << 20;

/// The longest a queued record waits for the writer when no answer wakes it.
const WRITE_WITHIN: Duration = Duration::from_millis(100);

/// Queued bytes that wake the writer even while answers are still being made.
const WAKE_AT: usize = 256 << 10;

tokio::task_local! {
    /// Set while a request is handled whose answer then waits on the barrier.
    static ANSWER_WAITS: ();
}

/// Runs `handle` (a request's handling) so that the records it queues wake the writer only when
/// its answer waits for them: one wake for what a whole turn of the event loop queued, not one
/// per record.
///
/// A plain function, not an `async fn`: that would hold `handle` twice (its argument and the
/// scope's copy), and request futures are moved whole, so their size is paid on every call.
pub fn answering<F: Future>(handle: F) -> impl Future<Output = F::Output> {
    ANSWER_WAITS.scope((), handle)
}

/// Where the writer thread writes.
pub enum Sink {
    File(File),
    Stdout,
}

impl Sink {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::File(file) => file.write_all(bytes),
            Self::Stdout => {
                let mut stdout = io::stdout().lock();
                stdout.write_all(bytes)?;
                stdout.flush()
            }
        }
    }

    fn sync(&self) -> io::Result<()> {
        match self {
            Self::File(file) => file.sync_data(),
            Self::Stdout => Ok(()),
        }
    }
}

/// The records between the event loops and the writer thread.
struct Queue {
    pending: Mutex<Pending>,
    /// The writer waits here for records.
    work: Condvar,
    /// Appenders wait here while the queue is full.
    room: Condvar,
    /// The sequence number of the last record queued, and of the last one written. Read without
    /// the lock: an answer with nothing left to wait for costs two loads.
    appended: AtomicU64,
    written: AtomicU64,
    /// The relays wait here for groups written.
    on_written: Notify,
    /// The writer has stopped: relays end.
    stopped: AtomicBool,
    /// The longest the writer sleeps with records queued that nothing woke it for.
    write_within: Duration,
}

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    /// The sequence number of the last record in `lines`.
    last: u64,
    /// A reopened file, and how many bytes of `lines` still belong to the old one.
    reopened: Option<(usize, Sink)>,
    /// The writer is waiting on `work` (so an append must wake it).
    writer_idle: bool,
    closed: bool,
}

/// The queue and its writer thread; dropping it writes what is queued and stops the thread.
pub struct GroupWriter {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<()>>,
}

impl GroupWriter {
    pub fn start(sink: Sink, fsync: Fsync) -> io::Result<Self> {
        Self::started(sink, fsync, WRITE_WITHIN)
    }

    fn started(sink: Sink, fsync: Fsync, write_within: Duration) -> io::Result<Self> {
        let queue = Arc::new(Queue {
            pending: Mutex::default(),
            work: Condvar::new(),
            room: Condvar::new(),
            appended: AtomicU64::new(0),
            written: AtomicU64::new(0),
            on_written: Notify::new(),
            stopped: AtomicBool::new(false),
            write_within,
        });
        let thread = std::thread::Builder::new()
            .name("mcpgate-audit".into())
            .spawn({
                let queue = queue.clone();
                move || {
                    batch_priority();
                    write_groups(&queue, sink, fsync)
                }
            })?;
        Ok(Self {
            queue,
            thread: Some(thread),
        })
    }

    /// Queues one or more whole lines. Queued while an answer is being made (`answering`), they
    /// leave the waking of the writer to that answer's wait; otherwise the writer is woken now.
    pub fn append(&self, lines: &[u8]) {
        let queue = &self.queue;
        let mut pending = lock(&queue.pending);
        while pending.lines.len() >= QUEUE_CAP && !pending.closed {
            pending = queue.room.wait(pending).unwrap_or_else(|e| e.into_inner());
        }
        pending.lines.extend_from_slice(lines);
        pending.last += 1;
        queue.appended.store(pending.last, Ordering::Release);
        let answer_waits = ANSWER_WAITS.try_with(|()| ()).is_ok();
        if !answer_waits || pending.lines.len() >= WAKE_AT {
            wake_writer(queue, pending);
        }
    }

    /// Writes the records queued from now on to `sink`; those queued before go where they were
    /// going.
    pub fn switch_to(&self, sink: Sink) {
        let mut pending = lock(&self.queue.pending);
        pending.reopened = Some((pending.lines.len(), sink));
        wake_writer(&self.queue, pending);
    }

    pub fn barrier(&self) -> AuditBarrier {
        AuditBarrier {
            queue: self.queue.clone(),
        }
    }
}

impl Drop for GroupWriter {
    fn drop(&mut self) {
        {
            let mut pending = lock(&self.queue.pending);
            pending.closed = true;
            self.queue.work.notify_one();
            self.queue.room.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.queue.stopped.store(true, Ordering::Release);
        self.queue.on_written.notify_waiters();
    }
}

/// What an answer waits on: the records queued before it, written.
#[derive(Clone)]
pub struct AuditBarrier {
    queue: Arc<Queue>,
}

impl AuditBarrier {
    /// `None` when every record queued so far is written; otherwise a future that resolves once
    /// they are (records queued later are not waited for).
    pub fn pending(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let target = self.queue.appended.load(Ordering::Acquire);
        if self.queue.written.load(Ordering::Acquire) >= target {
            return None;
        }
        let queue = self.queue.clone();
        Some(async move {
            match Relay::of_this_loop(&queue) {
                Some(relay) => {
                    relay.wanted.notify_one();
                    written_through(&queue, &relay.answers, target).await
                }
                None => {
                    wake_writer(&queue, lock(&queue.pending));
                    written_through(&queue, &queue.on_written, target).await
                }
            }
        })
    }
}

/// Resolves once the writer has passed record `target`; `written` is notified when it may have.
async fn written_through(queue: &Queue, written: &Notify, target: u64) {
    loop {
        let notified = written.notified();
        tokio::pin!(notified);
        // Registered before the check, so a group written between the two still wakes us.
        notified.as_mut().enable();
        if queue.written.load(Ordering::Acquire) >= target {
            return;
        }
        notified.await;
    }
}

/// The task of one event loop between its answers and the writer. Told that answers wait, it
/// wakes the writer when it next runs: after the tasks this turn of the loop had queued already,
/// whose records then join the same group (an answer that woke the writer itself would first
/// have to yield, and be polled once more, whole, for that). The writer wakes it for each group
/// written, and it wakes the answers of its loop that wait: with tokio's loop per worker thread
/// (`server/mod.rs`), one cross-thread wake per group and loop instead of one per answer.
struct Relay {
    /// Answers of this loop wait for records not yet written.
    wanted: Notify,
    answers: Notify,
    /// Cleared when the relay's task is dropped (its runtime shut down): the next answer on this
    /// thread starts another.
    running: AtomicBool,
}

thread_local! {
    /// This thread's relays, one per audit queue.
    static RELAYS: RefCell<Vec<(Weak<Queue>, Arc<Relay>)>> = const { RefCell::new(Vec::new()) };
}

impl Relay {
    /// The relay of the event loop on this thread for `queue`, started if there is none; `None`
    /// outside a tokio runtime.
    fn of_this_loop(queue: &Arc<Queue>) -> Option<Arc<Relay>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        RELAYS.with_borrow_mut(|relays| {
            relays.retain(|(queue, relay)| {
                queue.strong_count() > 0 && relay.running.load(Ordering::Acquire)
            });
            if let Some((_, relay)) = relays
                .iter()
                .find(|(known, _)| std::ptr::eq(known.as_ptr(), Arc::as_ptr(queue)))
            {
                return Some(relay.clone());
            }
            let relay = Arc::new(Relay {
                wanted: Notify::new(),
                answers: Notify::new(),
                running: AtomicBool::new(true),
            });
            // Read before any answer waits on the relay: a group written from here on, even
            // before the task first runs, is one it passes on.
            let seen = queue.written.load(Ordering::Acquire);
            runtime.spawn(Relay::run(Running(relay.clone()), queue.clone(), seen));
            relays.push((Arc::downgrade(queue), relay.clone()));
            Some(relay)
        })
    }

    /// Takes `running` as an argument, not a local: a task dropped before its first poll drops its
    /// arguments too, and the relay is marked stopped all the same.
    async fn run(running: Running, queue: Arc<Queue>, mut seen: u64) {
        let relay = &running.0;
        loop {
            let written_now = queue.on_written.notified();
            let wanted = relay.wanted.notified();
            tokio::pin!(written_now, wanted);
            // Registered before the check: a group written after it wakes this task, one written
            // before it is seen by the check.
            written_now.as_mut().enable();
            let written = queue.written.load(Ordering::Acquire);
            if written != seen {
                seen = written;
                relay.answers.notify_waiters();
                continue;
            }
            if queue.stopped.load(Ordering::Acquire) {
                relay.answers.notify_waiters();
                return;
            }
            tokio::select! {
                biased;
                () = &mut written_now => {}
                () = &mut wanted => wake_writer(&queue, lock(&queue.pending)),
            }
        }
    }
}

/// A relay's hold on its task: marks the relay stopped when the task ends or is dropped with its
/// runtime.
struct Running(Arc<Relay>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

/// Puts the writer thread under SCHED_BATCH: woken, it does not preempt the event loop on the
/// CPU it wakes on; it runs when that loop yields the CPU or another is free, and the records
/// queued meanwhile join its group. Under the default policy each wake-up preempted the worker
/// (bench/README.md: about one involuntary context switch of the worker per call). Best effort.
fn batch_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler with pid 0 changes the calling thread only, and reads `param`
    // only during the call.
    let failed = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0;
    if failed {
        tracing::debug!(error = %std::io::Error::last_os_error(), "the audit writer keeps the default scheduling policy");
    }
}

/// Wakes the writer if it waits for records, once the queue's lock is released: woken while it
/// is held, the writer can find it taken and sleep on it once more, two more system calls
/// (bench/README.md: ~0.6 fewer `futex` calls a call at 2 connections this way).
fn wake_writer(queue: &Queue, mut pending: MutexGuard<'_, Pending>) {
    // Only a waiting writer needs the (system-call) wake-up; a busy one takes the group next.
    let idle = std::mem::take(&mut pending.writer_idle);
    drop(pending);
    if idle {
        queue.work.notify_one();
    }
}

fn lock(pending: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    pending.lock().unwrap_or_else(|e| e.into_inner())
}

/// The writer thread: takes the whole queue, writes it, flushes as `fsync` says, publishes how
/// far it got; until closed and empty.
fn write_groups(queue: &Queue, mut sink: Sink, fsync: Fsync) {
    let mut group = Vec::new();
    // With `Fsync::Interval`: when the oldest written but unflushed record was written.
    let mut unflushed_since: Option<Instant> = None;
    loop {
        let flush_due = unflushed_since.map(|since| since + FSYNC_INTERVAL);
        let (last, reopened) = match take_group(queue, &mut group, flush_due) {
            Taken::Group { last, reopened } => (last, reopened),
            Taken::FlushDue => {
                flush(&sink);
                unflushed_since = None;
                continue;
            }
            Taken::Closed => {
                if unflushed_since.is_some() {
                    flush(&sink);
                }
                return;
            }
        };
        match reopened {
            Some((old_part, new_sink)) => {
                write(&mut sink, &group[..old_part]);
                if fsync != Fsync::Never {
                    flush(&sink);
                }
                sink = new_sink;
                write(&mut sink, &group[old_part..]);
            }
            None => write(&mut sink, &group),
        }
        group.clear();
        match fsync {
            Fsync::Always => flush(&sink),
            Fsync::Interval => {
                let since = *unflushed_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= FSYNC_INTERVAL {
                    flush(&sink);
                    unflushed_since = None;
                }
            }
            Fsync::Never => {}
        }
        queue.written.store(last, Ordering::Release);
        queue.on_written.notify_waiters();
    }
}

enum Taken {
    /// `group` holds the queued lines, up to record `last`.
    Group {
        last: u64,
        reopened: Option<(usize, Sink)>,
    },
    /// Nothing queued, and written records have waited [`FSYNC_INTERVAL`] for a flush.
    FlushDue,
    /// Closed, and everything written.
    Closed,
}

/// Waits for records (or for `flush_due`) and swaps the queue into `group`. The lock is held
/// for the swap only: appenders never wait for a write or a flush.
fn take_group(queue: &Queue, group: &mut Vec<u8>, flush_due: Option<Instant>) -> Taken {
    let mut pending = lock(&queue.pending);
    while pending.lines.is_empty() && pending.reopened.is_none() {
        if pending.closed {
            return Taken::Closed;
        }
        let now = Instant::now();
        if flush_due.is_some_and(|due| due <= now) {
            return Taken::FlushDue;
        }
        // Records queued while an answer is made leave the wake to that answer's wait; one whose
        // answer waits on something else first (a call held for approval) is written within
        // `write_within` all the same.
        let wait = flush_due.map_or(queue.write_within, |due| {
            (due - now).min(queue.write_within)
        });
        pending.writer_idle = true;
        pending = queue
            .work
            .wait_timeout(pending, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        pending.writer_idle = false;
    }
    if pending.lines.len() >= QUEUE_CAP {
        queue.room.notify_all();
    }
    std::mem::swap(group, &mut pending.lines);
    Taken::Group {
        last: pending.last,
        reopened: pending.reopened.take(),
    }
}

/// A group that cannot be written is logged and its answers go out: the calls were forwarded
/// already, and holding their answers would not undo them.
fn write(sink: &mut Sink, group: &[u8]) {
    if group.is_empty() {
        return;
    }
    if let Err(err) = sink.write_all(group) {
        tracing::error!(error = %err, bytes = group.len(), "could not write the audit log");
    }
}

fn flush(sink: &Sink) {
    if let Err(err) = sink.sync() {
        tracing::error!(error = %err, "could not flush the audit log to disk");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event loop as a worker thread runs one (`server/mod.rs`).
    fn event_loop() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Records queued while an answer is made wait for that answer to wake the writer, through
    /// its loop's relay: with the writer's own timed wake an hour away, answers are released all
    /// the same, the first (which starts the relay) and two waiting in one turn of the loop.
    #[test]
    fn answers_that_wait_wake_the_writer_through_their_loops_relay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let sink = Sink::File(File::create(&path).unwrap());
        let writer = GroupWriter::started(sink, Fsync::Never, Duration::from_secs(3600)).unwrap();
        let answer = |n: u32| {
            let writer = &writer;
            answering(async move {
                writer.append(format!("{{\"answer\":{n}}}\n").as_bytes());
                if let Some(written) = writer.barrier().pending() {
                    written.await;
                }
            })
        };
        let runtime = event_loop();
        let released = runtime.block_on(async {
            // A guard against a hang, not a measurement: without the relay's wake, the writer
            // sleeps for the hour.
            tokio::time::timeout(Duration::from_secs(30), async {
                answer(0).await;
                answer(1).await;
                tokio::join!(answer(2), answer(3));
            })
            .await
        });
        assert!(
            released.is_ok(),
            "an answer waited for a writer nothing woke"
        );
        drop(runtime);
        drop(writer);
        let lines = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            lines,
            "{\"answer\":0}\n{\"answer\":1}\n{\"answer\":2}\n{\"answer\":3}\n"
        );
    }

    /// An answer waits on its event loop's relay; when that loop's runtime has shut down, the
    /// next runtime on the same thread starts its own, and its answers are still released.
    #[test]
    fn answers_on_a_runtime_that_replaced_a_stopped_one_are_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let writer =
            GroupWriter::start(Sink::File(File::create(&path).unwrap()), Fsync::Never).unwrap();
        for round in 0..3 {
            let runtime = event_loop();
            let released = runtime.block_on(answering(async {
                writer.append(format!("{{\"round\":{round}}}\n").as_bytes());
                let written = writer.barrier().pending();
                // A guard against a hang, not a measurement: the record is written at once.
                tokio::time::timeout(Duration::from_secs(30), async {
                    if let Some(written) = written {
                        written.await;
                    }
                })
                .await
            }));
            assert!(
                released.is_ok(),
                "round {round}: the answer was never released"
            );
            drop(runtime);
        }
        drop(writer);
        let lines = std::fs::read_to_string(&path).unwrap();
        assert_eq!(lines, "{\"round\":0}\n{\"round\":1}\n{\"round\":2}\n");
    }
}
