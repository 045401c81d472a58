//! Progress of a watched run on stderr, shared by `runs watch` (git syncs) and
//! `sync-runs watch` (Reverse ETL runs). On a terminal it is a spinner that turns into a
//! bar once the run knows how much it has to do; elsewhere (CI logs, pipes) it prints one
//! plain line each time the run's state changes, so logs stay short and readable.

use std::io::IsTerminal;
use std::time::Duration;

/// What one update shows.
pub struct Step<'a> {
    /// Printed as a plain line whenever it changes (e.g. "running extracting").
    pub state: &'a str,
    /// The spinner's message (e.g. "run r1: delivering · 10 added").
    pub message: String,
    /// `(done, total)` once a total is known: the spinner becomes a bar.
    pub position: Option<(u64, u64)>,
}

pub enum Progress {
    Bar(indicatif::ProgressBar),
    Lines { last: String },
}

impl Progress {
    pub fn new(id: &str) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(100));
            bar.set_message(format!("run {id}: waiting"));
            Progress::Bar(bar)
        } else {
            Progress::Lines {
                last: String::new(),
            }
        }
    }

    pub fn update(&mut self, step: Step<'_>) {
        match self {
            Progress::Bar(bar) => {
                if let Some((done, total)) = step.position {
                    if bar.length().is_none() {
                        bar.set_length(total);
                        if let Ok(style) = indicatif::ProgressStyle::with_template(
                            "{spinner} {msg} [{bar:30}] {pos}/{len} ({eta})",
                        ) {
                            bar.set_style(style.progress_chars("=> "));
                        }
                    }
                    bar.set_position(done);
                }
                bar.set_message(step.message);
            }
            Progress::Lines { last } => {
                if last != step.state {
                    eprintln!("{}", step.message);
                    step.state.clone_into(last);
                }
            }
        }
    }

    /// Leaves the spinner where it is (the caller reports why it stopped watching).
    pub fn abandon(self) {
        if let Progress::Bar(bar) = self {
            bar.abandon();
        }
    }

    pub fn finish(self, summary: String) {
        match self {
            Progress::Bar(bar) => bar.finish_with_message(summary),
            Progress::Lines { .. } => eprintln!("{summary}"),
        }
    }
}
