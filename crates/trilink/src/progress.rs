//! A progress bar on standard error, drawn only when standard error is a terminal, so logs and
//! pipes stay clean.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    state: Mutex<(String, usize)>,
}

const WIDTH: usize = 30;

impl Progress {
    pub fn new() -> Progress {
        Progress { enabled: std::io::stderr().is_terminal(), state: Mutex::new((String::new(), 1)) }
    }

    /// Starts a stage of `total` steps.
    pub fn stage(&self, label: &str, total: usize) {
        if let Ok(mut s) = self.state.lock() {
            *s = (label.to_string(), total.max(1));
        }
        self.set(0);
    }

    pub fn set(&self, done: usize) {
        if !self.enabled {
            return;
        }
        let Ok(s) = self.state.lock() else { return };
        let (label, total) = (&s.0, s.1);
        let filled = WIDTH * done.min(total) / total;
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{label:<24} [{}{}] {done}/{total}", "#".repeat(filled), "-".repeat(WIDTH - filled));
        let _ = err.flush();
    }

    pub fn finish(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r{:<80}\r", "");
        }
    }
}
