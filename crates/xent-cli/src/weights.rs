//! `xent weights`: class counts and weights over folders of label masks.

use crate::masks::{read_colormap, Reader};
use crate::{atomic, progress};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use xent::weights::{AbsentClasses, ClassCounts, Scheme};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Arguments of `xent weights`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Mask files, and folders searched recursively for masks (.png, .npy, .nii, .nii.gz, .tif, .tiff).
    pub paths: Vec<PathBuf>,
    /// Number of classes K (labels 0..K); taken from --counts files if omitted.
    #[arg(long)]
    pub classes: Option<usize>,
    /// Label value that marks pixels to ignore.
    #[arg(long, default_value_t = 255)]
    pub ignore_index: i64,
    /// Weighting scheme.
    #[arg(long, default_value = "inverse_frequency", value_parser = crate::loss::scheme_parser())]
    pub scheme: Scheme,
    /// The constant c of enet.
    #[arg(long)]
    pub c: Option<f64>,
    /// The constant beta of effective_number.
    #[arg(long)]
    pub beta: Option<f64>,
    /// What classes absent from the data get.
    #[arg(long, default_value = "zero", value_parser = absent_parser())]
    pub absent: AbsentClasses,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the result to this file (atomically) instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// JSON list of [r, g, b] per class, for RGB masks.
    #[arg(long)]
    pub colormap: Option<PathBuf>,
    /// Write the merged counts of this run to this file (JSON), for merging later.
    #[arg(long)]
    pub save_counts: Option<PathBuf>,
    /// Counts files (from --save-counts) to merge in, for example one per shard.
    #[arg(long, num_args = 1..)]
    pub counts: Vec<PathBuf>,
    /// Skip unreadable or invalid mask files, and report them, instead of failing.
    #[arg(long)]
    pub skip_bad: bool,
    /// Refuse mask files that claim more pixels than this, before decoding them.
    #[arg(long, default_value_t = 1 << 28)]
    pub max_pixels: usize,
}

/// `--absent`: the names of [`AbsentClasses`].
fn absent_parser() -> impl clap::builder::TypedValueParser<Value = AbsentClasses> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["zero", "largest", "error"]).try_map(|s| s.parse::<AbsentClasses>())
}

/// What a walk found: the mask files, each once, and what it passed over (with why).
#[derive(Default)]
struct Found {
    files: Vec<PathBuf>,
    skipped: Vec<(PathBuf, String)>,
    /// `(device, inode)` of every folder and file reached, so that each is visited once however
    /// it is reached (hard links, symbolic links, a link back up the tree).
    seen: std::collections::HashSet<(u64, u64)>,
}

fn is_mask(p: &Path) -> bool {
    crate::masks::extension(p).is_some()
}

impl Found {
    /// Visits `p` (`named`: given on the command line, so counted whatever its extension):
    /// folders recursively in sorted order, regular files once each; FIFOs, sockets and devices
    /// are listed as skipped and never opened, and a folder reached again (a symbolic link loop)
    /// is listed once and not followed.
    fn visit(&mut self, p: &Path, named: bool) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let md = match std::fs::metadata(p) {
            Ok(md) => md,
            // A dangling link inside a folder: the reader names it (or --skip-bad lists it).
            Err(_) if !named && is_mask(p) => {
                self.files.push(p.to_path_buf());
                return Ok(());
            }
            Err(_) if !named => return Ok(()),
            Err(e) => {
                return Err(e).with_context(|| format!("{}: no such file or folder (or a dangling link)", p.display()))
            }
        };
        if !self.seen.insert((md.dev(), md.ino())) {
            if md.is_dir() {
                self.skipped.push((
                    p.to_path_buf(),
                    format!("{}: a folder reached again (a link loop), not followed", p.display()),
                ));
            }
            return Ok(());
        }
        if md.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("{}: cannot read folder", p.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()
                .with_context(|| format!("{}: cannot read folder", p.display()))?;
            entries.sort();
            for e in entries {
                self.visit(&e, false)?;
            }
        } else if !md.is_file() {
            self.skipped.push((
                p.to_path_buf(),
                format!("{}: not a regular file (a FIFO, socket or device), not read", p.display()),
            ));
        } else if named || is_mask(p) {
            self.files.push(p.to_path_buf());
        }
        Ok(())
    }
}

/// Every mask file under `paths`, each once, sorted within each folder; and what was skipped.
fn collect(paths: &[PathBuf]) -> Result<Found> {
    let mut found = Found::default();
    for p in paths {
        found.visit(p, true)?;
    }
    Ok(found)
}

/// Runs the command; returns what to print.
pub fn run(args: &Args) -> Result<String> {
    let scheme = args.scheme.with_parameters(args.c, args.beta)?;
    let absent = args.absent;
    let mut shards = Vec::new();
    for p in &args.counts {
        let text = std::fs::read_to_string(p).with_context(|| format!("{}: cannot read counts", p.display()))?;
        shards.push(ClassCounts::from_json(&text).with_context(|| p.display().to_string())?);
    }
    let classes = match (args.classes, shards.first()) {
        (Some(k), _) => k,
        (None, Some(s)) => s.num_classes(),
        (None, None) => bail!("--classes K is required (or --counts files to take it from)"),
    };
    let ignore = Some(args.ignore_index);
    let Found { files, skipped: mut skipped_paths, .. } = collect(&args.paths)?;
    if files.is_empty() && shards.is_empty() {
        bail!("no mask files ({}) found in {:?}", crate::masks::EXTENSIONS.join(", "), args.paths);
    }
    let reader =
        Reader { colormap: args.colormap.as_deref().map(read_colormap).transpose()?, max_pixels: args.max_pixels };
    let bar = progress::bar(files.len() as u64, "masks");
    let results: Vec<Result<ClassCounts>> = files
        .par_iter()
        .map(|f| {
            let r = reader.read(f).and_then(|m| m.count(classes, ignore)).with_context(|| f.display().to_string());
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    let mut total = ClassCounts::new(classes, ignore);
    for s in &shards {
        total.merge(s).context("merging --counts files")?;
    }
    let mut skipped = Vec::new();
    skipped.append(&mut skipped_paths);
    for (f, r) in files.iter().zip(results) {
        match r {
            Ok(c) => total.merge(&c)?,
            Err(e) if args.skip_bad => skipped.push((f.clone(), format!("{e:#}"))),
            Err(e) => return Err(e),
        }
    }
    if !skipped.is_empty() {
        eprintln!("xent: skipped {} file(s):", skipped.len());
        for (_, e) in &skipped {
            eprintln!("  {e}");
        }
    }
    if let Some(p) = &args.save_counts {
        atomic::write(p, total.to_json().as_bytes())?;
    }
    let weights = total.weights(scheme, absent)?;
    Ok(render(args.format, &total, &weights, scheme, &skipped))
}

fn render(format: Format, c: &ClassCounts, w: &[f64], scheme: Scheme, skipped: &[(PathBuf, String)]) -> String {
    let freq = c.frequencies();
    let mut s = String::new();
    match format {
        Format::Json => {
            let v = serde_json::json!({
                "num_classes": c.num_classes(),
                "ignore_index": c.ignore_index(),
                "images": c.images(),
                "labelled": c.labelled(),
                "ignored": c.ignored(),
                "counts": c.pixels(),
                "image_pixels": c.image_pixels(),
                "frequencies": freq,
                "weights": w,
                "scheme": scheme.to_string(),
                "skipped": skipped.iter().map(|(p, e)| serde_json::json!({"path": p, "error": e})).collect::<Vec<_>>(),
            });
            s = serde_json::to_string_pretty(&v).expect("plain values serialise");
            s.push('\n');
        }
        Format::Csv => {
            s.push_str("class,pixels,frequency,weight\n");
            for k in 0..c.num_classes() {
                let _ = writeln!(s, "{k},{},{},{}", c.pixels()[k], freq[k], w[k]);
            }
        }
        Format::Table => {
            let _ = writeln!(
                s,
                "{} images, {} labelled pixels, {} ignored; scheme {}",
                c.images(),
                c.labelled(),
                c.ignored(),
                scheme
            );
            let _ = writeln!(s, "{:>5} {:>14} {:>10} {:>12}", "class", "pixels", "frequency", "weight");
            let top = freq.iter().cloned().fold(0.0, f64::max);
            for k in 0..c.num_classes() {
                let bar = if top > 0.0 { "#".repeat((freq[k] / top * 30.0).round() as usize) } else { String::new() };
                let _ = writeln!(s, "{k:>5} {:>14} {:>10.6} {:>12.6}  {bar}", c.pixels()[k], freq[k], w[k]);
            }
        }
    }
    s
}
