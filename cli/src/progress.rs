//! Progress for long operations (indicatif) and live notes for people. Nothing is drawn when
//! output is JSON or stderr is not a terminal, so scripts see clean output.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress display plus a channel for timeline notes.
#[derive(Clone, Debug)]
pub struct Progress {
    bar: ProgressBar,
    notes: bool,
}

impl Progress {
    /// Progress for people (`notes` printed to stdout) or silent (for `--json`).
    pub fn new(for_people: bool) -> Self {
        let target = if for_people {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            bar: ProgressBar::with_draw_target(None, target),
            notes: for_people,
        }
    }

    /// A bar over `total` steps.
    pub fn start_bar(&self, total: u64, message: &str) {
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} frames ({elapsed})",
        ) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_length(total);
        self.bar.set_position(0);
        self.bar.set_message(message.to_owned());
        self.bar.enable_steady_tick(Duration::from_millis(120));
    }

    /// Moves the bar to `position`.
    pub fn set_position(&self, position: u64) {
        self.bar.set_position(position);
    }

    /// A spinner with `message` (no known length).
    pub fn start_spinner(&self, message: &str) {
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            self.bar.set_style(style);
        }
        self.bar.set_message(message.to_owned());
        self.bar.enable_steady_tick(Duration::from_millis(120));
    }

    /// Changes the spinner's or bar's message.
    pub fn set_message(&self, message: String) {
        self.bar.set_message(message);
    }

    /// Prints a line for people above the bar (or plainly when the bar is not drawn).
    pub fn note(&self, line: &str) {
        if !self.notes {
            return;
        }
        if self.bar.is_hidden() {
            println!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
