//! Progress bars for commands a person waits on (loads, copies): bytes,
//! files, throughput and ETA on stderr, and nothing at all under `--json`
//! or when stdout is not a terminal (scripts and logs get the summary line
//! only).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

/// A bar of `total` bytes; hidden when `json` or stdout is not a terminal.
pub fn bytes_bar(total: u64, json: bool) -> ProgressBar {
    if json || !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Progress of a copy of files or trees: bytes, files, throughput, ETA.
pub struct CopyProgress {
    bar: ProgressBar,
    files_total: AtomicU64,
    files_done: AtomicU64,
}

impl CopyProgress {
    pub fn new(json: bool) -> CopyProgress {
        CopyProgress {
            bar: bytes_bar(0, json),
            files_total: Default::default(),
            files_done: Default::default(),
        }
    }

    /// Whether the bar is drawn (totals are worth a walk only then).
    pub fn visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    pub fn set_totals(&self, files: u64, bytes: u64) {
        self.files_total.store(files, Ordering::Relaxed);
        self.bar.set_length(bytes);
        self.show_files();
    }

    pub fn add_bytes(&self, n: u64) {
        self.bar.inc(n);
    }

    pub fn file_done(&self) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
        self.show_files();
    }

    fn show_files(&self) {
        self.bar.set_message(format!(
            "{}/{} files",
            self.files_done.load(Ordering::Relaxed),
            self.files_total.load(Ordering::Relaxed)
        ));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A spinner with a message, for waits whose total is unknown (a metadata
/// load); hidden like [`bytes_bar`].
pub fn count_spinner(json: bool) -> ProgressBar {
    if json || !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
