//! The golden runner: every case of every `*.json` file in `tests/golden/` (or in the folder named
//! by `XENT_GOLDEN_DIR`), run single-threaded and multi-threaded, output and gradient checked with
//! the tolerances of `tests/golden/README.md`. Prints `OP: N passed, M failed` per file and exits
//! non-zero on any failure (a plain `main`, so the lines show without `--nocapture`).

mod common;

use common::golden::{run_file, Tally};
use std::path::PathBuf;

fn main() -> std::process::ExitCode {
    let dir = std::env::var_os("XENT_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read golden folder {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.json golden files in {}", dir.display());
    let mut total = Tally::default();
    let mut problems = Vec::new();
    for f in &files {
        let (op, tally, failures) = run_file(f);
        let skipped = if tally.skipped > 0 {
            format!(", {} skipped ({})", tally.skipped, tally.skip_reason)
        } else {
            String::new()
        };
        println!("{op}: {} passed, {} failed{skipped}", tally.passed, tally.failed);
        for msg in failures.iter().take(20) {
            println!("  FAIL {msg}");
        }
        problems.extend(failures);
        total.add(&tally);
    }
    println!("golden: {} passed, {} failed, {} skipped", total.passed, total.failed, total.skipped);
    if problems.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
