//! The golden runner: every case of every `*.json` file in `tests/golden/` (or in the folder named
//! by `XENT_GOLDEN_DIR`), run single-threaded and multi-threaded, output and gradient checked with
//! the tolerances of `tests/golden/README.md`. Prints `OP: N passed, M failed` per file and exits
//! non-zero on any failure (a plain `main`, so the lines show without `--nocapture`).

mod common;

fn main() -> std::process::ExitCode {
    common::golden::run_all(common::golden::run_case)
}
