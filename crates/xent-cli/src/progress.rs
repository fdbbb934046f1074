//! Progress: bars on a terminal; elsewhere (a file, a pipe, CI) plain lines where a long job
//! reports them.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A bar of `len` steps on standard error when it is a terminal; hidden otherwise.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
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
