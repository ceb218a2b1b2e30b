//! Checkpoints of the SQLite write-ahead log, kept out of the writer's way.
//!
//! A checkpoint copies the log's pages into the database file, syncing the log before and the
//! database file after (the only syncs `synchronous = NORMAL` makes). The log starts over from
//! its beginning only when a write transaction begins with every page of it copied. Under
//! constant writes that never happens by itself: a checkpoint beside the writer always leaves a
//! few new commits behind. Letting the writer checkpoint a long log itself was a pause of 5–25 ms
//! for every write waiting, about once a second under load.
//!
//! So a thread of its own checkpoints beside the writer (passive: it never waits for the writer
//! or the readers), every [`INTERVAL`]. Once the log is long, it checkpoints again at once, each
//! pass shorter than the last, syncing the database file after each. When a pass has copied only
//! a few pages, it tells the writer, which copies the few pages committed since, between two
//! batches (about a millisecond under load, with its syncs), and its next transaction starts the
//! log over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

/// How often the checkpoint thread copies the log into the database file while the log is short.
const INTERVAL: Duration = Duration::from_millis(50);
/// From this size, the checkpoint thread works toward starting the log over.
const RESTART_BYTES: i64 = 16 << 20;
/// The writer checkpoints by itself once the log has grown to this size, in case the thread
/// cannot catch up (a long read keeping old pages in use, say).
const WRITER_BYTES: i64 = 64 << 20;
/// A pass that copied at most this many pages leaves the writer about as few.
const FEW_PAGES: i64 = 128;

/// The log's sizes that matter, in pages of the database.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogLimits {
    /// From this many pages in the log, the thread works toward starting it over.
    pub(crate) restart_pages: i64,
    /// SQLite's `wal_autocheckpoint` for the writer.
    pub(crate) writer_pages: i64,
}

impl LogLimits {
    pub(crate) fn for_page_size(page_size: i64) -> LogLimits {
        let page_size = page_size.max(512);
        LogLimits {
            restart_pages: RESTART_BYTES / page_size,
            writer_pages: WRITER_BYTES / page_size,
        }
    }
}

/// What the checkpoint thread tells the writer: the log is long and all but the last few
/// commits of it are in the database file.
#[derive(Clone, Default)]
pub(crate) struct RestartSignal(Arc<AtomicBool>);

impl RestartSignal {
    /// Whether the writer should finish the checkpoint now (and the signal is reset).
    pub(crate) fn take(&self) -> bool {
        self.0.load(Ordering::Relaxed) && self.0.swap(false, Ordering::Relaxed)
    }

    fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Finishes what the checkpoint thread started: copies what was committed since its last pass.
/// Called by the writer between transactions. A failure or a busy log is left for the next
/// signal: the log is then only longer for a while.
pub(crate) fn finish_on_writer(conn: &Connection) {
    let _ = passive_checkpoint(conn);
}

/// `(pages in the log, pages of it in the database file)` after a passive checkpoint.
fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get(1)?, row.get(2)?))
    })
}

/// Syncs the database file through `conn`'s own handle to it (SQLite's `xSync`, the call its
/// checkpoints make). A passive checkpoint syncs the database file only when it has copied the
/// log to its end, which under constant writes is the writer's last step alone: that step then
/// wrote back every page copied since the last one (2.5–4 ms, with every write waiting).
fn sync_database_file(conn: &Connection) -> Result<(), String> {
    use rusqlite::ffi;
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: `conn` is an open connection that only this thread uses. FILE_POINTER writes the
    // main database's `sqlite3_file` (owned by the connection, open as long as it is) into
    // `file`; its `xSync` only syncs the file and changes no state of the connection.
    let rc = unsafe {
        let rc = ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_FILE_POINTER,
            std::ptr::addr_of_mut!(file).cast(),
        );
        if rc != ffi::SQLITE_OK || file.is_null() || (*file).pMethods.is_null() {
            return Err(format!("no database file to sync (SQLite code {rc})"));
        }
        match (*(*file).pMethods).xSync {
            Some(sync) => sync(file, ffi::SQLITE_SYNC_NORMAL),
            None => return Err("the database file cannot be synced".to_owned()),
        }
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(format!("the sync failed (SQLite code {rc})"))
    }
}

/// Starts the checkpoint thread on `conn` (a connection of its own to the database file). It
/// stops when told (and answers once its connection is closed) or when the store is dropped.
pub(crate) fn start(
    conn: Connection,
    limits: LogLimits,
    signal: RestartSignal,
) -> Result<mpsc::Sender<oneshot::Sender<()>>, String> {
    let (stop, stopped) = mpsc::channel::<oneshot::Sender<()>>();
    std::thread::Builder::new()
        .name("sqlite-checkpoint".to_owned())
        .spawn(move || {
            let mut wait = INTERVAL;
            let mut last = Pass::default();
            loop {
                match stopped.recv_timeout(wait) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Ok(reply) => {
                        let _ = conn.close();
                        let _ = reply.send(());
                        return;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
                let at_once = wait.is_zero();
                wait = INTERVAL;
                // A failure (the disk, say) is the writer's to report: its commits or its own
                // checkpoints fail the same way. The next pass may work.
                let Ok((pages, copied)) = passive_checkpoint(&conn) else {
                    continue;
                };
                let pass = last.next(pages, copied, at_once);
                let step = pass.step(limits.restart_pages);
                if pass.new > 0 && step != Step::Wait && sync_database_file(&conn).is_err() {
                    last = pass;
                    continue;
                }
                match step {
                    Step::Wait => {}
                    Step::Again => wait = Duration::ZERO,
                    Step::TellWriter => signal.raise(),
                }
                last = pass;
            }
        })
        .map_err(|e| format!("cannot start the checkpoint thread: {e}"))?;
    Ok(stop)
}

/// What a checkpoint pass found, as the next step depends on it.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Pass {
    /// Pages in the log.
    pages: i64,
    /// Pages of the log in the database file.
    copied: i64,
    /// Pages this pass copied (all of the log's, if the log started over since the last pass).
    new: i64,
    /// `new` of the pass before, if this pass followed it at once (else none).
    new_before: Option<i64>,
}

#[derive(Debug, PartialEq)]
enum Step {
    /// The log is short, or cannot be copied further for now (a read keeps old pages in use).
    Wait,
    /// Another pass at once: it has less to copy than this one had.
    Again,
    /// What is left is the writer's to copy: a few commits' pages.
    TellWriter,
}

impl Pass {
    /// The pass after this one; `at_once` if it followed this one without a wait.
    fn next(&self, pages: i64, copied: i64, at_once: bool) -> Pass {
        let new = if copied >= self.copied {
            copied - self.copied
        } else {
            copied
        };
        Pass {
            pages,
            copied,
            new,
            new_before: at_once.then_some(self.new),
        }
    }

    fn step(&self, restart_pages: i64) -> Step {
        if self.pages < restart_pages {
            Step::Wait
        } else if self.copied < self.pages {
            if self.new > 0 {
                Step::Again
            } else {
                Step::Wait
            }
        } else if self.new <= FEW_PAGES || self.new_before.is_some_and(|before| self.new >= before)
        {
            // Few pages left behind, or passes no longer get shorter (their syncs take as long
            // as the pages they leave behind take to commit): the writer finishes.
            Step::TellWriter
        } else {
            Step::Again
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(pages: i64, copied: i64, new: i64, new_before: Option<i64>) -> Pass {
        Pass {
            pages,
            copied,
            new,
            new_before,
        }
    }

    #[test]
    fn a_long_log_is_copied_pass_after_pass_until_the_writer_has_little_left() {
        let step = |p: Pass| p.step(4_000);
        assert_eq!(step(pass(100, 100, 100, None)), Step::Wait, "a short log");
        assert_eq!(step(pass(5_000, 4_000, 1_000, None)), Step::Again);
        assert_eq!(
            step(pass(5_000, 4_000, 0, Some(1_000))),
            Step::Wait,
            "a pass that could copy nothing (a read keeps old pages in use)"
        );
        assert_eq!(
            step(pass(5_000, 5_000, 2_000, None)),
            Step::Again,
            "the first pass over the mark, after a wait"
        );
        assert_eq!(step(pass(5_000, 5_000, 600, Some(2_000))), Step::Again);
        assert_eq!(step(pass(5_000, 5_000, 100, Some(600))), Step::TellWriter);
        assert_eq!(
            step(pass(5_000, 5_000, 300, Some(290))),
            Step::TellWriter,
            "passes no longer get shorter"
        );
    }

    #[test]
    fn a_pass_counts_the_pages_it_copied() {
        let first = Pass::default().next(3_000, 3_000, false);
        assert_eq!(first, pass(3_000, 3_000, 3_000, None));
        let second = first.next(4_200, 4_000, true);
        assert_eq!(second, pass(4_200, 4_000, 1_000, Some(3_000)));
        let restarted = second.next(300, 250, false);
        assert_eq!(restarted.new, 250, "the log started over");
    }

    #[test]
    fn a_signal_is_taken_once() {
        let signal = RestartSignal::default();
        assert!(!signal.take());
        signal.raise();
        assert!(signal.take());
        assert!(!signal.take());
    }

    #[test]
    fn limits_follow_the_page_size() {
        let small = LogLimits::for_page_size(1024);
        assert_eq!((small.restart_pages, small.writer_pages), (16_384, 65_536));
        let large = LogLimits::for_page_size(4096);
        assert_eq!((large.restart_pages, large.writer_pages), (4_096, 16_384));
    }

    #[test]
    fn the_database_file_syncs_through_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("sync.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (x)").unwrap();
        assert_eq!(sync_database_file(&conn), Ok(()));
    }

    /// Under constant writes, with the writer finishing each checkpoint the thread tells it to,
    /// the log starts over again and again; without that, it only grows.
    #[test]
    fn the_log_starts_over_under_constant_writes() {
        let wal_size_after_writes = |writer_finishes: bool| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("log.db");
            let writer = Connection::open(&path).unwrap();
            writer
                .execute_batch(
                    "PRAGMA page_size = 1024; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; \
                     CREATE TABLE t (x BLOB)",
                )
                .unwrap();
            let limits = LogLimits {
                restart_pages: 256,
                writer_pages: 0,
            };
            let signal = RestartSignal::default();
            let stop = start(Connection::open(&path).unwrap(), limits, signal.clone()).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_millis(1000);
            let mut finished = 0;
            while std::time::Instant::now() < deadline {
                writer
                    .execute("INSERT INTO t VALUES (randomblob(900))", [])
                    .unwrap();
                if signal.take() && writer_finishes {
                    finish_on_writer(&writer);
                    finished += 1;
                }
            }
            let (reply, _) = oneshot::channel();
            let _ = stop.send(reply);
            let wal = std::fs::metadata(dir.path().join("log.db-wal")).unwrap();
            (wal.len(), finished)
        };
        let (grown, _) = wal_size_after_writes(false);
        let (bounded, finished) = wal_size_after_writes(true);
        assert!(finished > 0, "the thread never told the writer");
        assert!(
            grown > 4 * 256 * 1024 * 2,
            "the log did not grow without the writer's part ({grown} bytes): the test writes too little"
        );
        assert!(
            bounded < grown / 2,
            "the log grew to {bounded} bytes with restarts, {grown} without"
        );
    }
}
