//! `xent`: class weights from label masks, and losses on saved arrays, from the command line.
//!
//! Exit codes: 0 on success (also when the reader of the output goes away), 2 on any error
//! (bad arguments, unreadable or invalid input, an output that cannot be written). Errors are
//! one line on standard error; output files are written whole or not at all.

#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;
use xent_cli::{atomic, bench, demo, loss, weights};

#[derive(Parser)]
#[command(name = "xent", version, about = "Classification losses and class weights, exact to PyTorch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train one small segmentation network per loss on imbalanced synthetic data and compare them.
    Demo(demo::DemoArgs),
    /// The demo's comparison on your own images and masks (PNG, matching file stems).
    Train(demo::TrainArgs),
    /// Class counts and weights over label masks (PNG, .npy), mergeable across shards.
    Weights(weights::Args),
    /// Any loss on saved arrays (.npy, .safetensors), streamed in chunks, with its gradient.
    Loss(Box<loss::Args>),
    /// Time the losses on realistic shapes (seg19, lm32k, lmhead, ...: `xent bench --help`).
    Bench(bench::Args),
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let (text, output) = match &cli.command {
        Command::Demo(a) => (demo::demo(a)?, None),
        Command::Train(a) => (demo::train_cmd(a)?, None),
        Command::Weights(a) => (weights::run(a)?, a.output.as_deref()),
        Command::Loss(a) => (loss::run(a)?, a.output.as_deref()),
        Command::Bench(a) => (bench::run(a)?, None),
    };
    match output {
        Some(p) => atomic::write(p, text.as_bytes()),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            Ok(())
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// A usage error of clap's in one line, as every other error: what is wrong and, for a bad
/// value, the values there are (help and version are printed as clap prints them).
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        e.exit();
    }
    let text = e.render().to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:"))
        .collect();
    eprintln!("xent: {}", parts.join(" ").trim_start_matches("error: "));
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xent: {e:#}");
            ExitCode::from(2)
        }
    }
}
