//! Long calls without blocking Python: the work runs on a worker thread while the calling thread waits
//! without the GIL, forwards the worker's progress to a Python callback (a tqdm bar by default) and checks
//! for Ctrl-C. On Ctrl-C the call raises `KeyboardInterrupt` at once and the worker stops at its next
//! progress point; anything it was writing is written atomically, so nothing is left half-written.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::errors::{panic_to_py, to_py, Interrupted};

/// Worker threads still running (an interrupted call's worker ends at its next progress point).
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// The number of worker threads still running.
pub fn running_workers() -> usize {
    RUNNING.load(Ordering::SeqCst)
}

/// Counts a worker while it lives.
struct Running;

impl Running {
    fn start() -> Running {
        RUNNING.fetch_add(1, Ordering::SeqCst);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How often the waiting thread checks for Ctrl-C.
const POLL: Duration = Duration::from_millis(50);

enum Message<T> {
    Progress { done: u64, total: u64, text: String },
    Finished(std::thread::Result<anyhow::Result<T>>),
}

/// What the work sees of its caller: where to report progress, and whether it was cancelled.
pub struct Reporter {
    progress: Box<dyn Fn(u64, u64, String) + Send>,
    cancelled: Arc<AtomicBool>,
}

impl Reporter {
    /// A reporter nobody listens to and nobody cancels (work done inside another call).
    pub fn silent() -> Reporter {
        Reporter {
            progress: Box::new(|_, _, _| {}),
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Reports `done` of `total` steps, with a short text (loss, stage).
    pub fn progress(&self, done: u64, total: u64, text: impl Into<String>) {
        (self.progress)(done, total, text.into());
    }

    /// An error when the caller pressed Ctrl-C (for work that returns a `Result`).
    pub fn check(&self) -> anyhow::Result<()> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(Interrupted.into());
        }
        Ok(())
    }

    /// Unwinds the work when the caller pressed Ctrl-C (for callbacks that cannot return an error, such
    /// as a training loop's progress hook); the boundary turns it into `KeyboardInterrupt`.
    pub fn stop_if_cancelled(&self) {
        if self.cancelled.load(Ordering::Relaxed) {
            std::panic::resume_unwind(Box::new(Interrupted));
        }
    }
}

/// Runs `work` on a worker thread and waits for it without holding the GIL. `progress`, when given, is a
/// Python callable `(done, total, text)` called on the calling thread. Errors become Python exceptions
/// (see [`crate::errors`]); a panic becomes `RuntimeError`; Ctrl-C raises `KeyboardInterrupt`.
pub fn run<T, F>(py: Python<'_>, progress: Option<Bound<'_, PyAny>>, work: F) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce(&Reporter) -> anyhow::Result<T> + Send + 'static,
{
    let (tx, mut rx) = channel::<Message<T>>();
    let cancelled = Arc::new(AtomicBool::new(false));
    let reporter_tx: Sender<Message<T>> = tx.clone();
    let reporter = Reporter {
        progress: Box::new(move |done, total, text| {
            let _ = reporter_tx.send(Message::Progress { done, total, text });
        }),
        cancelled: cancelled.clone(),
    };
    let running = Running::start();
    std::thread::Builder::new()
        .name("cellshift-worker".into())
        .spawn(move || {
            let _running = running;
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| work(&reporter)));
            let _ = tx.send(Message::Finished(result));
        })
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start a worker thread: {e}")))?;
    loop {
        let (message, receiver) = py.detach(move || (rx.recv_timeout(POLL), rx));
        rx = receiver;
        match message {
            Ok(Message::Progress { done, total, text }) => {
                if let Some(callback) = &progress {
                    if let Err(err) = callback.call1((done, total, text)) {
                        cancelled.store(true, Ordering::Relaxed);
                        return Err(err);
                    }
                }
            }
            Ok(Message::Finished(Ok(Ok(value)))) => return Ok(value),
            Ok(Message::Finished(Ok(Err(err)))) => return Err(to_py(err)),
            Ok(Message::Finished(Err(payload))) => return Err(panic_to_py(payload)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(PyRuntimeError::new_err(
                    "internal error in cellshift: the worker thread ended without a result",
                ))
            }
        }
        if let Err(err) = py.check_signals() {
            cancelled.store(true, Ordering::Relaxed);
            return Err(err);
        }
    }
}
