//! `xent weights`: class counts and weights over folders of label masks.

use crate::masks::{read_colormap, Reader};
use crate::{atomic, progress};
use anyhow::{bail, ensure, Context, Result};
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
    /// Write the merged counts of this run to this file (JSON), for merging later. It is also
    /// rewritten (atomically) during the run, every 1000 inputs or 10 s, with the counts so far
    /// and the inputs they cover, for --resume.
    #[arg(long)]
    pub save_counts: Option<PathBuf>,
    /// Continue the run saved in --save-counts FILE (if it exists): the inputs it covers are not
    /// read again, and must be unchanged (size and modification time) since.
    #[arg(long, requires = "save_counts")]
    pub resume: bool,
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

/// The identity of an input when it was read: its size and modification time (s, ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: (i64, i64),
}

impl Stamp {
    fn of(path: &Path) -> Result<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(path).context("cannot stat")?;
        Ok(Stamp { size: md.size(), mtime: (md.mtime(), md.mtime_nsec()) })
    }
}

/// What `--save-counts` holds: the counts of the inputs read so far (mask files and `--counts`
/// files), which inputs those are, and the bad files skipped with `--skip-bad`.
struct Saved {
    counts: ClassCounts,
    covered: std::collections::BTreeMap<PathBuf, Stamp>,
    bad: Vec<(PathBuf, String)>,
}

impl Saved {
    fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_value(&self.counts).expect("plain values serialise");
        let covered: Vec<_> = self
            .covered
            .iter()
            .map(|(p, s)| serde_json::json!([p.to_string_lossy(), s.size, s.mtime.0, s.mtime.1]))
            .collect();
        v["skipped_bad"] = self.bad.iter().map(|(p, e)| serde_json::json!([p.to_string_lossy(), e])).collect();
        v["covered"] = covered.into();
        serde_json::to_vec(&v).expect("plain values serialise")
    }

    /// Reads a file written by [`Saved::to_json`] (or by a run without `--resume`).
    fn read(path: &Path) -> Result<Saved> {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let counts = ClassCounts::from_json(&text).with_context(|| path.display().to_string())?;
        let v: serde_json::Value = serde_json::from_str(&text).expect("parsed once already");
        let bad_entry = || format!("{}: a malformed \"covered\" or \"skipped_bad\" entry", path.display());
        let mut covered = std::collections::BTreeMap::new();
        for e in v["covered"].as_array().map_or(&[][..], |a| a) {
            let (p, size, s, ns) = (e[0].as_str(), e[1].as_u64(), e[2].as_i64(), e[3].as_i64());
            let (Some(p), Some(size), Some(s), Some(ns)) = (p, size, s, ns) else { bail!(bad_entry()) };
            covered.insert(PathBuf::from(p), Stamp { size, mtime: (s, ns) });
        }
        let mut bad = Vec::new();
        for e in v["skipped_bad"].as_array().map_or(&[][..], |a| a) {
            let (Some(p), Some(err)) = (e[0].as_str(), e[1].as_str()) else { bail!(bad_entry()) };
            bad.push((PathBuf::from(p), err.to_string()));
        }
        Ok(Saved { counts, covered, bad })
    }
}

/// Inputs between two rewrites of `--save-counts` during a run, at most.
const SAVE_EVERY_INPUTS: usize = 1000;
/// Time between two rewrites of `--save-counts` during a run, at most (while inputs complete).
const SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the command; returns what to print.
pub fn run(args: &Args) -> Result<String> {
    let scheme = args.scheme.with_parameters(args.c, args.beta)?;
    let absent = args.absent;
    let read_counts = |p: &Path| -> Result<ClassCounts> {
        let text = std::fs::read_to_string(p).with_context(|| format!("{}: cannot read counts", p.display()))?;
        ClassCounts::from_json(&text).with_context(|| p.display().to_string())
    };
    let classes = match (args.classes, args.counts.first()) {
        (Some(k), _) => k,
        (None, Some(p)) => read_counts(p)?.num_classes(),
        (None, None) => bail!("--classes K is required (or --counts files to take it from)"),
    };
    let ignore = Some(args.ignore_index);
    let Found { files, skipped: walk_skipped, .. } = collect(&args.paths)?;
    if files.is_empty() && args.counts.is_empty() {
        bail!("no mask files ({}) found in {:?}", crate::masks::EXTENSIONS.join(", "), args.paths);
    }
    let mut saved = Saved { counts: ClassCounts::new(classes, ignore), covered: Default::default(), bad: Vec::new() };
    if let Some(p) = args.save_counts.as_deref().filter(|p| args.resume && p.exists()) {
        saved = Saved::read(p)?;
        let c = &saved.counts;
        ensure!(
            (c.num_classes(), c.ignore_index()) == (classes, ignore),
            "{}: counts of {} classes with ignore index {:?}, but this run has {classes} and {ignore:?}",
            p.display(),
            c.num_classes(),
            c.ignore_index()
        );
        let inputs: std::collections::HashSet<&Path> = args.counts.iter().chain(&files).map(PathBuf::as_path).collect();
        for (f, stamp) in &saved.covered {
            ensure!(
                inputs.contains(f.as_path()),
                "{}: counted in {} but not among this run's inputs; resume with the same arguments",
                f.display(),
                p.display()
            );
            let now = Stamp::of(f).with_context(|| format!("{}: counted in {}", f.display(), p.display()))?;
            ensure!(
                now == *stamp,
                "{}: changed since it was counted in {} (size {} -> {}, modified {}.{:09} -> {}.{:09}); start again without --resume",
                f.display(),
                p.display(),
                stamp.size,
                now.size,
                stamp.mtime.0,
                stamp.mtime.1,
                now.mtime.0,
                now.mtime.1
            );
        }
    }
    let save = |saved: &Saved| -> Result<()> {
        match &args.save_counts {
            Some(p) => atomic::write(p, &saved.to_json()),
            None => Ok(()),
        }
    };
    let shards: Vec<&PathBuf> = args.counts.iter().filter(|p| !saved.covered.contains_key(*p)).collect();
    for p in shards {
        let stamp = Stamp::of(p).with_context(|| format!("{}: cannot read counts", p.display()))?;
        saved.counts.merge(&read_counts(p)?).with_context(|| format!("{}: merging --counts files", p.display()))?;
        saved.covered.insert(p.clone(), stamp);
    }
    let reader =
        Reader { colormap: args.colormap.as_deref().map(read_colormap).transpose()?, max_pixels: args.max_pixels };
    let pending: Vec<(usize, &PathBuf)> =
        files.iter().enumerate().filter(|(_, f)| !saved.covered.contains_key(*f)).collect();
    let bar = progress::bar(files.len() as u64, "masks");
    bar.inc((files.len() - pending.len()) as u64);
    // Files are read in parallel and merged here as they complete: counts are integers, so the
    // order of merging changes nothing, and a run stopped anywhere resumes to the same bits.
    let (tx, rx) = std::sync::mpsc::channel();
    let mut errors = Vec::new();
    let (mut since, mut last) = (0usize, std::time::Instant::now());
    std::thread::scope(|s| -> Result<()> {
        s.spawn(|| {
            pending.par_iter().for_each_with(tx, |tx, &(i, f)| {
                let r = Stamp::of(f).and_then(|st| Ok((st, reader.read(f)?.count(classes, ignore)?)));
                let _ = tx.send((i, f, r.with_context(|| f.display().to_string())));
            })
        });
        for (i, f, r) in rx {
            bar.inc(1);
            match r {
                Ok((stamp, c)) => {
                    saved.counts.merge(&c)?;
                    saved.covered.insert(f.clone(), stamp);
                }
                Err(e) if args.skip_bad => {
                    saved.bad.push((f.clone(), format!("{e:#}")));
                    if let Ok(stamp) = Stamp::of(f) {
                        saved.covered.insert(f.clone(), stamp);
                    }
                }
                Err(e) => errors.push((i, e)),
            }
            since += 1;
            if since >= SAVE_EVERY_INPUTS || last.elapsed() >= SAVE_EVERY {
                save(&saved)?;
                (since, last) = (0, std::time::Instant::now());
            }
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    // The first bad file in the walk's order, whatever order the threads finished in.
    if let Some((_, e)) = errors.into_iter().min_by_key(|(i, _)| *i) {
        return Err(e);
    }
    saved.bad.sort();
    let mut skipped = walk_skipped;
    skipped.extend(saved.bad.iter().cloned());
    if !skipped.is_empty() {
        eprintln!("xent: skipped {} file(s):", skipped.len());
        for (_, e) in &skipped {
            eprintln!("  {e}");
        }
    }
    save(&saved)?;
    let weights = saved.counts.weights(scheme, absent)?;
    Ok(render(args.format, &saved.counts, &weights, scheme, &skipped))
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
