//! `xent demo` and `xent train`: the seed's claim, measured. The same small fully convolutional
//! network is trained once per loss on imbalanced binary segmentation, and each is scored on
//! held-out images: plain cross-entropy learns to predict the majority class; weighting finds
//! the foreground.

mod conv;
mod data;
mod network;
mod pictures;
mod report;
mod training;

use crate::draw;
use crate::masks::{Labels, Reader};
use anyhow::{ensure, Context, Result};
use data::{synthesize, Data, Rng};
use pictures::{curves_png, curves_svg, samples_png};
use std::path::{Path, PathBuf};
use training::train;

/// Arguments of `xent demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Folder for summary.json and the pictures.
    #[arg(long, default_value = "xent-demo")]
    pub out: PathBuf,
    /// Passes over the training images, per loss.
    #[arg(long, default_value_t = 6)]
    pub epochs: usize,
    /// Seed of the data and of the network's initial weights.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Side of the square images, in pixels.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
}

/// Arguments of `xent train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Folder of PNG images (grayscale or RGB).
    #[arg(long)]
    pub images: PathBuf,
    /// Folder of PNG masks with the images' file stems: 0 is background, any other value foreground.
    #[arg(long)]
    pub masks: PathBuf,
    /// Losses to compare, comma-separated (ce, ce_batch_inverse_freq, ce_dataset_weights,
    /// bce_pos_weight, focal, dice_ce), or all.
    #[arg(long, default_value = "all")]
    pub loss: String,
    /// Folder for summary.json and the pictures.
    #[arg(long, default_value = "xent-train")]
    pub out: PathBuf,
    /// Passes over the training images, per loss.
    #[arg(long, default_value_t = 8)]
    pub epochs: usize,
    /// Seed of the split and of the network's initial weights.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// The losses compared, in order, with their plot colours.
const LOSSES: [(&str, [u8; 3]); 6] = [
    ("ce", [120, 120, 120]),
    ("ce_batch_inverse_freq", [230, 120, 20]),
    ("ce_dataset_weights", [200, 30, 30]),
    ("bce_pos_weight", [30, 120, 220]),
    ("focal", [150, 60, 200]),
    ("dice_ce", [30, 170, 80]),
];

/// Trains every chosen loss, prints the table, writes summary.json and the pictures.
fn compare(names: &[&'static str], tr: &Data, test: &Data, epochs: usize, seed: u64, out: &Path) -> Result<String> {
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let start = std::time::Instant::now();
    let chosen: Vec<_> = LOSSES.iter().filter(|(n, _)| names.contains(n)).collect();
    // Two networks train at a time: one alone keeps only about 1.2 of the 2 cores busy (46 s
    // for the demo, 38-41 s two at a time, 39 s three). Each is seeded on its own, so the
    // results do not depend on the order.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&&(name, colour)) = chosen.get(i) else { break };
                let r = train(name, colour, tr, test, epochs, seed, start);
                done.lock().expect("a training thread panicked").push((i, r));
            });
        }
    });
    let mut done = done.into_inner().expect("a training thread panicked");
    done.sort_by_key(|(i, _)| *i);
    let runs = done.into_iter().map(|(_, r)| r).collect::<Result<Vec<_>>>()?;
    let about = format!(
        "{} training and {} held-out images of {}x{}, {:.1}% foreground; {epochs} epochs per loss",
        tr.n,
        test.n,
        tr.side,
        tr.side,
        100.0 * tr.foreground()
    );
    let mut text = format!("{about}\n");
    text.push_str(&format!(
        "{:<22} {:>8} {:>9} {:>7} {:>7} {:>10}\n",
        "loss", "fg IoU", "precision", "recall", "F1", "bg acc"
    ));
    for r in &runs {
        let s = r.scores;
        text.push_str(&format!(
            "{:<22} {:>8.3} {:>9.3} {:>7.3} {:>7.3} {:>10.4}\n",
            r.name, s.iou, s.precision, s.recall, s.f1, s.background
        ));
    }
    let summary = serde_json::json!({
        "losses": runs.iter().map(|r| serde_json::json!({
            "name": r.name,
            "foreground_iou": r.scores.iou,
            "precision": r.scores.precision,
            "recall": r.scores.recall,
            "f1": r.scores.f1,
            "background_accuracy": r.scores.background,
            "f1_per_epoch": r.curve,
            "colour": r.colour,
        })).collect::<Vec<_>>(),
        "epochs": epochs,
        "seed": seed,
        "train_images": tr.n,
        "test_images": test.n,
        "side": tr.side,
        "foreground_fraction": tr.foreground(),
    });
    crate::atomic::write(&out.join("summary.json"), serde_json::to_string_pretty(&summary)?.as_bytes())?;
    let samples = samples_png(&runs, test)?;
    draw::save(&out.join("curves.png"), &curves_png(&runs, epochs)?)?;
    draw::save(&out.join("samples.png"), &samples)?;
    let page = report::html(&about, &runs, &curves_svg(&runs, epochs)?, &samples);
    crate::atomic::write(&out.join("report.html"), page.as_bytes())?;
    text.push_str(&format!(
        "wrote {0}/summary.json, curves.png, samples.png, report.html (open {0}/report.html)\n",
        out.display()
    ));
    Ok(text)
}

/// `xent demo`.
pub fn demo(a: &DemoArgs) -> Result<String> {
    ensure!(a.size >= 16, "--size must be at least 16");
    ensure!(a.epochs >= 1, "--epochs must be at least 1");
    let mut rng = Rng::new(a.seed);
    let train_set = synthesize(160, a.size, &mut rng);
    let test_set = synthesize(64, a.size, &mut rng);
    let names: Vec<&'static str> = LOSSES.iter().map(|(n, _)| *n).collect();
    compare(&names, &train_set, &test_set, a.epochs, a.seed, &a.out)
}

/// Reads a PNG image as grayscale in `[0, 1]`.
fn read_image(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).context("cannot open")?));
    let mut dec = dec;
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut r = dec.read_info().context("corrupt PNG")?;
    let mut buf = vec![0u8; r.output_buffer_size()];
    let f = r.next_frame(&mut buf).context("corrupt PNG")?;
    let ch = f.color_type.samples();
    let (w, h) = (f.width as usize, f.height as usize);
    let px: Vec<f32> = buf[..f.buffer_size()]
        .chunks_exact(f.line_size)
        .flat_map(|row| {
            row[..w * ch]
                .chunks_exact(ch)
                .map(|p| p[..ch.min(3)].iter().map(|&v| v as f32).sum::<f32>() / (255.0 * ch.min(3) as f32))
                .collect::<Vec<_>>()
        })
        .collect();
    Ok((px, w, h))
}

/// `xent train`: the same comparison on the user's images and masks.
pub fn train_cmd(a: &TrainArgs) -> Result<String> {
    let names: Vec<&'static str> = if a.loss == "all" {
        LOSSES.iter().map(|(n, _)| *n).collect()
    } else {
        a.loss
            .split(',')
            .map(|n| {
                LOSSES
                    .iter()
                    .find(|(l, _)| *l == n.trim())
                    .map(|(l, _)| *l)
                    .with_context(|| format!("unknown loss {n:?}"))
            })
            .collect::<Result<_>>()?
    };
    let mut stems: Vec<PathBuf> = std::fs::read_dir(&a.images)
        .with_context(|| format!("{}: cannot read folder", a.images.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .collect();
    stems.sort();
    ensure!(stems.len() >= 2, "{}: need at least 2 PNG images", a.images.display());
    let reader = Reader { colormap: None, max_pixels: 1 << 26 };
    let (mut images, mut masks, mut side) = (Vec::new(), Vec::new(), None);
    for p in &stems {
        let (img, w, h) = read_image(p).with_context(|| p.display().to_string())?;
        let mp = a.masks.join(p.file_name().unwrap());
        let m = reader.read(&mp).with_context(|| format!("{}: the mask of {}", mp.display(), p.display()))?;
        ensure!(
            w == h && m.width == w && m.height == h,
            "{}: images and masks must be square and of one size",
            p.display()
        );
        ensure!(*side.get_or_insert(w) == w, "{}: all images must have the same size", p.display());
        let bin: Vec<u8> = match m.labels {
            Labels::U8(v) => v.into_iter().map(|x| u8::from(x != 0)).collect(),
            Labels::U16(v) => v.into_iter().map(|x| u8::from(x != 0)).collect(),
            Labels::I32(v) => v.into_iter().map(|x| u8::from(x != 0)).collect(),
            Labels::I64(v) => v.into_iter().map(|x| u8::from(x != 0)).collect(),
        };
        images.push(img);
        masks.push(bin);
    }
    let s = side.unwrap_or(0);
    // A fixed shuffle, then 80% for training.
    let mut rng = Rng::new(a.seed);
    let mut order: Vec<usize> = (0..images.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let cut = (order.len() * 4 / 5).clamp(1, order.len() - 1);
    let pack = |idx: &[usize]| Data {
        images: idx.iter().flat_map(|&i| images[i].iter().copied()).collect(),
        masks: idx.iter().flat_map(|&i| masks[i].iter().copied()).collect(),
        n: idx.len(),
        side: s,
    };
    let (tr, te) = (pack(&order[..cut]), pack(&order[cut..]));
    compare(&names, &tr, &te, a.epochs, a.seed, &a.out)
}
