//! The log's writer: loggers append their line to a buffer in memory, and a thread of its own
//! writes what has gathered to stderr in one `write`.
//!
//! The thread does not wake for each line. It sleeps until a line arrives, then gathers lines
//! for up to [`GATHER_FOR`] (or until [`WRITE_AT`] bytes have gathered) and writes them all.
//! A warning or an error is written at once, with whatever gathered before it. Under load that
//! is one `write` per 64 KiB of lines (about 70 a second at 20,000 requests a second) instead of
//! a wake-up of the thread (a `futex` call and a switch of threads) for every line or two, as a
//! writer that drains a channel does (bench/RESULTS.md).
//!
//! Nothing is dropped: past [`MAX_WAITING`] bytes not yet written (stderr blocked), loggers wait
//! for the thread. The guard writes what is left when it is dropped at exit. A process killed
//! with SIGKILL loses the lines of its last [`GATHER_FOR`] at most.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait for others before it is written.
pub(crate) const GATHER_FOR: Duration = Duration::from_millis(50);
/// Bytes gathered that are written without waiting longer.
const WRITE_AT: usize = 64 * 1024;
/// Bytes not yet written past which loggers wait for the thread.
const MAX_WAITING: usize = 16 << 20;

/// What `init` hands to tracing-subscriber: each line goes to the shared buffer.
#[derive(Clone)]
pub(crate) struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Stops the thread when dropped, after it has written every line logged until then.
#[must_use = "dropping the guard stops the log writer"]
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the thread: a first line, a warning, enough bytes, or closing.
    wake: Condvar,
    /// Wakes loggers that wait for room.
    room: Condvar,
}

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    /// A line that should not wait (a warning or an error) is in `lines`.
    urgent: bool,
    closing: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A logger that panicked mid-append leaves at worst a partial line: keep logging.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Starts the thread that writes to `out`, waiting up to `gather_for` for lines to gather.
pub(crate) fn start(
    out: impl Write + Send + 'static,
    gather_for: Duration,
) -> io::Result<(BatchedWriter, FlushGuard)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
        room: Condvar::new(),
    });
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn({
            let shared = shared.clone();
            move || write_until_closed(&shared, out, gather_for)
        })?;
    Ok((
        BatchedWriter {
            shared: shared.clone(),
        },
        FlushGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

fn write_until_closed(shared: &Shared, mut out: impl Write, gather_for: Duration) {
    let mut taken = Vec::new();
    loop {
        let closing = {
            let state = shared.lock();
            let state = shared
                .wake
                .wait_while(state, |s| s.lines.is_empty() && !s.closing)
                .unwrap_or_else(|e| e.into_inner());
            let (mut state, _) = shared
                .wake
                .wait_timeout_while(state, gather_for, |s| {
                    !s.urgent && !s.closing && s.lines.len() < WRITE_AT
                })
                .unwrap_or_else(|e| e.into_inner());
            state.urgent = false;
            std::mem::swap(&mut taken, &mut state.lines);
            state.closing && state.lines.is_empty()
        };
        shared.room.notify_all();
        if !taken.is_empty() {
            // Nowhere to report a failed write of the log: the lines are dropped, as
            // tracing-subscriber drops a line its writer refuses.
            let _ = out.write_all(&taken).and_then(|()| out.flush());
            taken.clear();
            // A burst (stderr blocked for a while) leaves no lasting memory behind.
            taken.shrink_to(2 * WRITE_AT);
        }
        if closing {
            return;
        }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One line being logged.
pub(crate) struct Line<'a> {
    shared: &'a Shared,
    urgent: bool,
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            shared: &self.shared,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line<'a> {
        Line {
            shared: &self.shared,
            // Levels order from ERROR (least verbose) up.
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

impl Write for Line<'_> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut state = self.shared.lock();
        if !state.closing {
            state = self
                .shared
                .room
                .wait_while(state, |s| s.lines.len() >= MAX_WAITING && !s.closing)
                .unwrap_or_else(|e| e.into_inner());
        }
        let was_empty = state.lines.is_empty();
        let was_below = state.lines.len() < WRITE_AT;
        state.lines.extend_from_slice(line);
        state.urgent |= self.urgent;
        // Only what changes the thread's wait wakes it: a wake-up is a system call.
        let wake = was_empty || self.urgent || (was_below && state.lines.len() >= WRITE_AT);
        drop(state);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A sink the test can read while the writer thread writes to it.
    #[derive(Clone, Default)]
    struct Sink {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
    }

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.bytes.lock().unwrap().extend_from_slice(bytes);
            *self.writes.lock().unwrap() += 1;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.bytes.lock().unwrap().clone()).unwrap()
        }

        fn wait_for(&self, expected: &str) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.text() != expected {
                assert!(Instant::now() < deadline, "got {:?}", self.text());
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    fn log(writer: &BatchedWriter, level: Option<Level>, line: &str) {
        let mut line_writer = writer.make_writer();
        line_writer.urgent = level.is_some_and(|l| l <= Level::WARN);
        line_writer.write_all(line.as_bytes()).unwrap();
    }

    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn lines_gather_and_the_guard_writes_them_all_in_order() {
        let sink = Sink::default();
        let (writer, guard) = start(sink.clone(), LONG).unwrap();
        for i in 0..1000 {
            log(&writer, Some(Level::INFO), &format!("line {i}\n"));
        }
        // Well under WRITE_AT and the hour's wait: nothing written yet.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(sink.text(), "");
        drop(guard);
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(sink.text(), expected);
        assert_eq!(*sink.writes.lock().unwrap(), 1, "one write for all of them");
    }

    #[test]
    fn a_warning_is_written_at_once_with_the_lines_before_it() {
        let sink = Sink::default();
        let (writer, _guard) = start(sink.clone(), LONG).unwrap();
        // Each time, the thread has woken for the first line and gathers for an hour when the
        // warning or the error comes.
        let settle = || std::thread::sleep(Duration::from_millis(100));
        log(&writer, Some(Level::INFO), "request done\n");
        settle();
        log(&writer, Some(Level::WARN), "provider attempt failed\n");
        sink.wait_for("request done\nprovider attempt failed\n");
        log(&writer, Some(Level::INFO), "request done\n");
        settle();
        log(&writer, Some(Level::ERROR), "store unavailable\n");
        sink.wait_for("request done\nprovider attempt failed\nrequest done\nstore unavailable\n");
    }

    #[test]
    fn enough_bytes_are_written_without_waiting() {
        let sink = Sink::default();
        let (writer, _guard) = start(sink.clone(), LONG).unwrap();
        let line = format!("{}\n", "x".repeat(1023));
        let lines = WRITE_AT / line.len();
        log(&writer, Some(Level::INFO), &line);
        // The thread has woken for the first line and gathers for an hour.
        std::thread::sleep(Duration::from_millis(100));
        for _ in 1..lines {
            log(&writer, Some(Level::INFO), &line);
        }
        sink.wait_for(&line.repeat(lines));
    }

    #[test]
    fn a_lone_line_waits_no_longer_than_the_gathering() {
        let sink = Sink::default();
        let (writer, _guard) = start(sink.clone(), Duration::from_millis(20)).unwrap();
        log(&writer, Some(Level::INFO), "request done\n");
        sink.wait_for("request done\n");
        // The thread sleeps again until the next line, which it also writes.
        log(&writer, Some(Level::INFO), "request done again\n");
        sink.wait_for("request done\nrequest done again\n");
    }

    #[test]
    fn loggers_wait_for_a_blocked_output_and_no_line_is_lost() {
        /// An output that blocks until the test opens it, and says when a write is waiting.
        #[derive(Clone)]
        struct Gate {
            /// (a write is waiting, the gate is open)
            state: Arc<(Mutex<(bool, bool)>, Condvar)>,
            sink: Sink,
        }
        impl Write for Gate {
            fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
                let (state, changed) = &*self.state;
                let mut state = state.lock().unwrap();
                state.0 = true;
                changed.notify_all();
                drop(changed.wait_while(state, |s| !s.1).unwrap());
                self.sink.write(bytes)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let gate = Gate {
            state: Arc::new((Mutex::new((false, false)), Condvar::new())),
            sink: Sink::default(),
        };
        let (writer, guard) = start(gate.clone(), Duration::from_millis(1)).unwrap();
        let line = format!("{}\n", "y".repeat(1 << 20));
        // The first line is taken by the thread, which then waits at the gate.
        log(&writer, Some(Level::INFO), &line);
        let (state, changed) = &*gate.state;
        drop(changed.wait_while(state.lock().unwrap(), |s| !s.0).unwrap());
        // More than MAX_WAITING behind it: the logger has to wait.
        let more = MAX_WAITING / line.len() + 2;
        let logger = std::thread::spawn({
            let writer = writer.clone();
            let line = line.clone();
            move || {
                for _ in 0..more {
                    log(&writer, Some(Level::INFO), &line);
                }
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        let waited = !logger.is_finished();
        state.lock().unwrap().1 = true;
        changed.notify_all();
        logger.join().unwrap();
        drop(guard);
        assert!(waited, "the logger did not wait for room");
        assert_eq!(
            gate.sink.bytes.lock().unwrap().len(),
            line.len() * (1 + more)
        );
    }
}
