//! Progress: bars on a terminal; elsewhere (a file, a pipe, CI) plain lines where a long job
//! reports them.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// A bar of `len` steps on standard error when it is a terminal; hidden otherwise. Bars shown
/// at the same time (the demo trains two networks at once) stack, one line each.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    static BARS: std::sync::OnceLock<MultiProgress> = std::sync::OnceLock::new();
    let bar = BARS.get_or_init(MultiProgress::new).add(ProgressBar::new(len));
    let style = ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {what} ({{per_sec}}, eta {{eta}})"))
        .expect("a fixed template parses");
    bar.set_style(style);
    bar
}

/// A line on standard error when it is not a terminal (where a bar shows the progress instead).
pub fn line(text: &str) {
    if !std::io::stderr().is_terminal() {
        eprintln!("{text}");
    }
}
