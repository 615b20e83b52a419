//! Progress of the long commands (`oms bench`, `oms chaos`) on standard
//! error, never on standard output, so that `-o json` stays one document.
//! On a terminal it is a spinner with the elapsed time and the current
//! step; elsewhere (a log file, CI) nothing, unless `--progress` asks for
//! it, and then it is plain lines: one per step, and one every
//! [`HEARTBEAT`] while a step lasts, so a log shows the run is alive.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often plain-line progress says that a long step still runs.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// Where progress goes.
#[derive(Debug, Clone)]
pub struct Progress {
    shown: Shown,
    started: Instant,
}

#[derive(Debug, Clone)]
enum Shown {
    Nowhere,
    Spinner(ProgressBar),
    Lines(Arc<Mutex<(String, Instant)>>),
}

impl Progress {
    /// A spinner when standard error is a terminal; plain lines there
    /// otherwise when `forced` (`--progress`); else nothing.
    pub fn on_stderr(forced: bool) -> Self {
        let shown = if std::io::stderr().is_terminal() {
            let spinner = ProgressBar::new_spinner();
            spinner.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            spinner.enable_steady_tick(Duration::from_millis(200));
            Shown::Spinner(spinner)
        } else if forced {
            Shown::Lines(Arc::new(Mutex::new((String::new(), Instant::now()))))
        } else {
            Shown::Nowhere
        };
        Self {
            shown,
            started: Instant::now(),
        }
    }

    /// No progress at all (tests, programs that embed a command).
    pub fn hidden() -> Self {
        Self {
            shown: Shown::Nowhere,
            started: Instant::now(),
        }
    }

    /// The run is at a new step.
    pub fn step(&self, step: impl Into<String>) {
        let step = step.into();
        match &self.shown {
            Shown::Nowhere => {}
            Shown::Spinner(spinner) => spinner.set_message(step),
            Shown::Lines(current) => {
                eprintln!("[{}] {step}", elapsed(self.started));
                *current.lock().expect("not poisoned") = (step, Instant::now());
            }
        }
    }

    /// In plain-line mode, says that the current step still runs, at most
    /// once per [`HEARTBEAT`]; call it as often as convenient.
    pub fn heartbeat(&self) {
        if let Shown::Lines(current) = &self.shown {
            let mut current = current.lock().expect("not poisoned");
            if current.1.elapsed() >= HEARTBEAT {
                eprintln!("[{}] still: {}", elapsed(self.started), current.0);
                current.1 = Instant::now();
            }
        }
    }

    /// Keeps the heartbeat going until the returned guard is dropped.
    pub fn heartbeats(&self) -> HeartbeatGuard {
        let progress = self.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                progress.heartbeat();
            }
        });
        HeartbeatGuard(task)
    }

    /// A line of results (a finished scenario), printed without tearing
    /// the spinner.
    pub fn println(&self, line: &str) {
        match &self.shown {
            Shown::Spinner(spinner) => spinner.println(line),
            _ => eprintln!("{line}"),
        }
    }

    /// The run is over: the spinner goes away.
    pub fn finish(&self) {
        if let Shown::Spinner(spinner) = &self.shown {
            spinner.finish_and_clear();
        }
    }
}

/// Stops the heartbeat task when dropped.
#[derive(Debug)]
pub struct HeartbeatGuard(tokio::task::JoinHandle<()>);

impl Drop for HeartbeatGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn elapsed(since: Instant) -> String {
    let secs = since.elapsed().as_secs();
    format!("{:02}:{:02}", secs / 60, secs % 60)
}
