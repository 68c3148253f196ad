//! Progress bars for commands a person waits on (loads, copies): bytes,
//! files, throughput and ETA on stderr, and nothing at all under `--json`
//! or when stdout is not a terminal (scripts and logs get the summary line
//! only).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

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
