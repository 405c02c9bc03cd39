//! Progress for commands that take seconds or more. On a terminal: an animated bar with ETA (or a
//! spinner). Otherwise (a log file, a pipe, CI): plain lines on stderr, at least every
//! `CELLSHIFT_PROGRESS_SECS` seconds (default 30) while a step runs; once a step has printed, each change
//! of stage and its end are printed too. A step shorter than the interval prints nothing, so a quick
//! command (or a quick failure's one-line error) stays quiet.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Default seconds between two plain progress lines when stderr is not a terminal.
const DEFAULT_LOG_INTERVAL_SECS: f64 = 30.0;

/// Progress of one step: a bar over `len` items, or a spinner when the length is unknown.
pub struct Progress {
    bar: Option<ProgressBar>,
    shared: Arc<Shared>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

/// State read by the plain-line ticker.
struct Shared {
    message: Mutex<String>,
    len: AtomicU64,
    has_len: bool,
    position: AtomicU64,
    started: Instant,
    done: AtomicBool,
    /// A plain line has been printed for this step.
    printed: AtomicBool,
}

impl Shared {
    fn message(&self) -> String {
        match self.message.lock() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn line(&self) -> String {
        let message = self.message();
        let elapsed = self.started.elapsed().as_secs_f64();
        let pos = self.position.load(Ordering::Relaxed);
        let len = self.has_len.then(|| self.len.load(Ordering::Relaxed));
        match len {
            Some(len) if pos > 0 && pos < len => {
                let eta = elapsed / pos as f64 * (len - pos) as f64;
                format!("{message}: {pos}/{len} ({elapsed:.0} s elapsed, eta {eta:.0} s)")
            }
            Some(len) => format!("{message}: {pos}/{len} ({elapsed:.0} s elapsed)"),
            None => format!("{message}: still running ({elapsed:.0} s elapsed)"),
        }
    }
}

/// Seconds between plain progress lines (`CELLSHIFT_PROGRESS_SECS`, default 30).
fn log_interval() -> Duration {
    let secs = std::env::var("CELLSHIFT_PROGRESS_SECS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(DEFAULT_LOG_INTERVAL_SECS);
    Duration::from_secs_f64(secs)
}

impl Progress {
    fn start(len: Option<u64>, message: &str) -> Progress {
        let shared = Arc::new(Shared {
            message: Mutex::new(message.to_string()),
            len: AtomicU64::new(len.unwrap_or(0)),
            has_len: len.is_some(),
            position: AtomicU64::new(0),
            started: Instant::now(),
            done: AtomicBool::new(false),
            printed: AtomicBool::new(false),
        });
        if std::io::stderr().is_terminal() {
            let bar = match len {
                Some(len) => {
                    let bar = ProgressBar::new(len);
                    let style = ProgressStyle::with_template(
                        "{msg:<28} [{bar:30}] {pos}/{len} ({elapsed} elapsed, eta {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
                    bar.set_style(style);
                    bar
                }
                None => ProgressBar::new_spinner(),
            };
            bar.set_message(message.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            return Progress {
                bar: Some(bar),
                shared,
                ticker: None,
            };
        }
        let interval = log_interval();
        let state = Arc::clone(&shared);
        let ticker = std::thread::spawn(move || {
            let mut last = Instant::now();
            while !state.done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50).min(interval));
                if last.elapsed() >= interval && !state.done.load(Ordering::Relaxed) {
                    eprintln!("{}", state.line());
                    state.printed.store(true, Ordering::Relaxed);
                    last = Instant::now();
                }
            }
        });
        Progress {
            bar: None,
            shared,
            ticker: Some(ticker),
        }
    }

    /// Advances the bar by `n` items.
    pub fn inc(&self, n: u64) {
        self.shared.position.fetch_add(n, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// Sets the number of items (when it is known only once the work has started).
    pub fn set_length(&self, len: u64) {
        self.shared.len.store(len, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(len);
        }
    }

    /// Sets how many items are done.
    pub fn set_position(&self, pos: u64) {
        self.shared.position.store(pos, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_position(pos);
        }
    }

    /// Names the current stage (shown on the bar; a plain line when stderr is not a terminal).
    pub fn set_message(&self, message: &str) {
        if let Ok(mut m) = self.shared.message.lock() {
            *m = message.to_string();
        }
        match &self.bar {
            Some(bar) => bar.set_message(message.to_string()),
            None if self.shared.printed.load(Ordering::Relaxed) => eprintln!("{message}: started"),
            None => {}
        }
    }

    /// Ends the step, printing how long it took when stderr is not a terminal.
    pub fn finish(mut self) {
        self.stop(true);
    }

    fn stop(&mut self, report: bool) {
        if self.shared.done.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
            if report && self.shared.printed.load(Ordering::Relaxed) {
                eprintln!(
                    "{}: done in {:.1} s",
                    self.shared.message(),
                    self.shared.started.elapsed().as_secs_f64()
                );
            }
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop(false);
    }
}

/// A progress bar over `len` items with a message, elapsed time and ETA.
pub fn bar(len: u64, message: &str) -> Progress {
    Progress::start(Some(len), message)
}

/// A spinner for steps of unknown length.
pub fn spinner(message: &str) -> Progress {
    Progress::start(None, message)
}
