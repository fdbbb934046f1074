//! `xent demo` and `xent train`: the seed's claim, measured. The same small fully convolutional
//! network is trained once per loss on imbalanced binary segmentation, and each is scored on
//! held-out images: plain cross-entropy learns to predict the majority class; weighting finds
//! the foreground.

use crate::draw::Canvas;
use crate::masks::{Labels, Reader};
use crate::progress;
use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{Conv2d, Conv2dConfig, Optimizer};
use std::path::{Path, PathBuf};
use xent::weights::{batch_weights, AbsentClasses, ClassCounts, Scheme};
use xent::*;

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

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn uniform(&mut self) -> f32 {
        self.next() as f32 / (1u64 << 31) as f32
    }
    fn normal(&mut self) -> f32 {
        (0..6).map(|_| self.uniform()).sum::<f32>() - 3.0
    }
    fn below(&mut self, n: usize) -> usize {
        self.next() as usize % n
    }
}

/// Images `[n, 1, s, s]` and binary masks `[n, s, s]`.
struct Data {
    images: Vec<f32>,
    masks: Vec<u8>,
    n: usize,
    side: usize,
}

impl Data {
    fn image(&self, i: usize) -> &[f32] {
        &self.images[i * self.side * self.side..(i + 1) * self.side * self.side]
    }
    fn mask(&self, i: usize) -> &[u8] {
        &self.masks[i * self.side * self.side..(i + 1) * self.side * self.side]
    }
    fn foreground(&self) -> f64 {
        self.masks.iter().filter(|&&m| m == 1).count() as f64 / self.masks.len() as f64
    }
}

/// Thin curved lines and small dots (the foreground, about 2-4% of the pixels) among noise and
/// clutter: wide soft blobs as bright as the lines, which only shape tells apart.
fn synthesize(n: usize, s: usize, rng: &mut Rng) -> Data {
    let mut images = vec![0.0f32; n * s * s];
    let mut masks = vec![0u8; n * s * s];
    for i in 0..n {
        let (img, mask) = (&mut images[i * s * s..(i + 1) * s * s], &mut masks[i * s * s..(i + 1) * s * s]);
        for _ in 0..3 {
            let (cx, cy, r) =
                (rng.uniform() * s as f32, rng.uniform() * s as f32, 3.0 + rng.uniform() * s as f32 / 8.0);
            for y in 0..s {
                for x in 0..s {
                    let d2 = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)) / (r * r);
                    img[y * s + x] += 0.7 * (-d2).exp();
                }
            }
        }
        for _ in 0..2 + rng.below(2) {
            let (mut x, mut y) = (rng.uniform() * s as f32, rng.uniform() * s as f32);
            let mut a = rng.uniform() * std::f32::consts::TAU;
            for _ in 0..s / 2 + rng.below(s / 2) {
                a += rng.normal() * 0.25;
                x += a.cos();
                y += a.sin();
                let (xi, yi) = (x.round() as i64, y.round() as i64);
                if xi >= 0 && yi >= 0 && (xi as usize) < s && (yi as usize) < s {
                    mask[yi as usize * s + xi as usize] = 1;
                }
            }
        }
        for _ in 0..rng.below(4) {
            let (x, y) = (rng.below(s - 2), rng.below(s - 2));
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                mask[(y + dy) * s + x + dx] = 1;
            }
        }
        for p in 0..s * s {
            img[p] += 0.8 * mask[p] as f32 + 0.25 * rng.normal();
        }
    }
    Data { images, masks, n, side: s }
}

/// The network: three 3x3 convolutions (the middle one dilated) with ReLU, and a 1x1 head.
struct Fcn {
    layers: Vec<Conv2d>,
    vars: Vec<Var>,
}

impl Fcn {
    fn new(out: usize, rng: &mut Rng, dev: &Device) -> Result<Fcn> {
        let spec = [(1, 12, 3, 1), (12, 16, 3, 2), (16, 16, 3, 1), (16, out, 1, 1)];
        let (mut layers, mut vars) = (Vec::new(), Vec::new());
        for (cin, cout, k, dil) in spec {
            let bound = (6.0 / (cin * k * k) as f32).sqrt();
            let w: Vec<f32> = (0..cout * cin * k * k).map(|_| (rng.uniform() * 2.0 - 1.0) * bound).collect();
            let w = Var::from_tensor(&Tensor::from_vec(w, (cout, cin, k, k), dev)?)?;
            let b = Var::zeros(cout, DType::F32, dev)?;
            let cfg = Conv2dConfig { padding: dil * (k / 2), dilation: dil, ..Default::default() };
            layers.push(Conv2d::new(w.as_tensor().clone(), Some(b.as_tensor().clone()), cfg));
            vars.extend([w, b]);
        }
        Ok(Fcn { layers, vars })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(&h)?;
            if i + 1 < self.layers.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }
}

/// Foreground IoU, precision, recall, F1, background accuracy.
#[derive(Debug, Clone, Copy, Default)]
struct Scores {
    iou: f64,
    precision: f64,
    recall: f64,
    f1: f64,
    background: f64,
}

fn scores(pred: &[u8], truth: &[u8]) -> Scores {
    let (mut tp, mut fp, mut fneg, mut tn) = (0f64, 0f64, 0f64, 0f64);
    for (&p, &t) in pred.iter().zip(truth) {
        match (p, t) {
            (1, 1) => tp += 1.0,
            (1, _) => fp += 1.0,
            (_, 1) => fneg += 1.0,
            _ => tn += 1.0,
        }
    }
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let (precision, recall) = (div(tp, tp + fp), div(tp, tp + fneg));
    Scores {
        iou: div(tp, tp + fp + fneg),
        precision,
        recall,
        f1: div(2.0 * precision * recall, precision + recall),
        background: div(tn, tn + fp),
    }
}

/// The per-pixel predictions of a model (1 = foreground).
fn predict(net: &Fcn, data: &Data, binary_head: bool, dev: &Device) -> Result<Vec<u8>> {
    let s = data.side;
    let mut out = Vec::with_capacity(data.masks.len());
    for start in (0..data.n).step_by(32) {
        let m = 32.min(data.n - start);
        let x = Tensor::from_slice(&data.images[start * s * s..(start + m) * s * s], (m, 1, s, s), dev)?;
        let logits = net.forward(&x)?;
        let fg: Vec<f32> = if binary_head {
            logits.flatten_all()?.to_vec1()?
        } else {
            (logits.narrow(1, 1, 1)? - logits.narrow(1, 0, 1)?)?.flatten_all()?.to_vec1()?
        };
        out.extend(fg.iter().map(|&v| u8::from(v > 0.0)));
    }
    Ok(out)
}

struct Trained {
    name: &'static str,
    colour: [u8; 3],
    scores: Scores,
    curve: Vec<f64>,
    pred: Vec<u8>,
}

/// Trains one network with loss `name` and scores it on `test` after every epoch.
fn train(name: &'static str, colour: [u8; 3], tr: &Data, test: &Data, epochs: usize, seed: u64) -> Result<Trained> {
    let dev = Device::Cpu;
    let mut rng = Rng(seed);
    let binary = name == "bce_pos_weight";
    let net = Fcn::new(if binary { 1 } else { 2 }, &mut rng, &dev)?;
    let mut opt = candle_nn::AdamW::new(
        net.vars.clone(),
        candle_nn::ParamsAdamW { lr: 5e-3, weight_decay: 0.0, ..Default::default() },
    )?;
    let s = tr.side;
    let counts = ClassCounts::from_images(View::new(&tr.masks, &[tr.n, s * s])?, 2, None)?;
    let dataset_w = counts.weights(Scheme::InverseFrequency, AbsentClasses::Zero)?;
    let pos_weight = counts.pixels()[0] as f64 / counts.pixels()[1].max(1) as f64;
    let bar = progress::bar((epochs * tr.n) as u64, name);
    let mut curve = Vec::new();
    let mut order: Vec<usize> = (0..tr.n).collect();
    for _ in 0..epochs {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        for batch in order.chunks(16) {
            let (mut xs, mut ys) = (Vec::new(), Vec::new());
            for &i in batch {
                xs.extend_from_slice(tr.image(i));
                ys.extend_from_slice(tr.mask(i));
            }
            let b = batch.len();
            let x = Tensor::from_vec(xs, (b, 1, s, s), &dev)?;
            let logits = net.forward(&x)?;
            let y = Tensor::from_vec(ys.clone(), (b, s, s), &dev)?;
            let ce = |w: Option<Vec<f64>>| CrossEntropyOptions { weight: w, ..Default::default() };
            let loss = match name {
                "ce" => xent_candle::cross_entropy(&logits, &y, &ce(None))?,
                "ce_batch_inverse_freq" => {
                    let w = batch_weights(
                        View::new(&ys, &[b, s * s])?,
                        2,
                        None,
                        Scheme::InverseFrequency,
                        AbsentClasses::Zero,
                    )?;
                    xent_candle::cross_entropy(&logits, &y, &ce(Some(w)))?
                }
                "ce_dataset_weights" => xent_candle::cross_entropy(&logits, &y, &ce(Some(dataset_w.clone())))?,
                "bce_pos_weight" => {
                    let opts = BceWithLogitsOptions {
                        pos_weight: Some(xent::WeightTensor::new(vec![pos_weight], vec![1])?),
                        ..Default::default()
                    };
                    xent_candle::binary_cross_entropy_with_logits(
                        &logits,
                        &y.to_dtype(DType::F32)?.unsqueeze(1)?,
                        &opts,
                    )?
                }
                "focal" => xent_candle::focal_loss(
                    &logits,
                    &y,
                    &FocalOptions { activation: xent::Activation::Softmax, gamma: 2.0, ..Default::default() },
                )?,
                "dice_ce" => {
                    // Dice of the foreground alone: the background's Dice is near 1 anyway.
                    let dice = DiceOptions { include_background: false, ..Default::default() };
                    xent_candle::dice_ce(&logits, &y, &DiceCeOptions { dice, ..Default::default() })?
                }
                other => bail!("unknown loss {other:?}"),
            };
            opt.backward_step(&loss)?;
            bar.inc(b as u64);
        }
        curve.push(scores(&predict(&net, test, binary, &dev)?, &test.masks).f1);
    }
    bar.finish_and_clear();
    let pred = predict(&net, test, binary, &dev)?;
    Ok(Trained { name, colour, scores: scores(&pred, &test.masks), curve, pred })
}

/// Trains every chosen loss, prints the table, writes summary.json and the pictures.
fn compare(names: &[&'static str], tr: &Data, test: &Data, epochs: usize, seed: u64, out: &Path) -> Result<String> {
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let mut runs = Vec::new();
    for &(name, colour) in LOSSES.iter().filter(|(n, _)| names.contains(n)) {
        runs.push(train(name, colour, tr, test, epochs, seed)?);
    }
    let mut text = format!(
        "{} training and {} held-out images of {}x{}, {:.1}% foreground; {epochs} epochs per loss\n",
        tr.n,
        test.n,
        tr.side,
        tr.side,
        100.0 * tr.foreground()
    );
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
    curves(&runs, epochs).save(&out.join("curves.png"))?;
    grid(&runs, test).save(&out.join("samples.png"))?;
    text.push_str(&format!("wrote {}/summary.json, curves.png, samples.png\n", out.display()));
    Ok(text)
}

/// Held-out foreground F1 (0 to 1, upwards) per epoch, one colour per loss; the legend strip at
/// the bottom shows the colours in the table's order.
fn curves(runs: &[Trained], epochs: usize) -> Canvas {
    let (w, h, m) = (480i64, 320i64, 30i64);
    let mut c = Canvas::new(w as usize, h as usize, [255, 255, 255]);
    for k in 0..=4 {
        let y = h - m - (h - 2 * m) * k / 4;
        c.rect(m, y, w - 2 * m, 1, [225, 225, 225]);
    }
    c.rect(m, m, 1, h - 2 * m, [0, 0, 0]);
    c.rect(m, h - m, w - 2 * m, 1, [0, 0, 0]);
    let px = |e: usize, f: f64| {
        let x = m + (w - 2 * m) * (e as i64 + 1) / epochs.max(1) as i64;
        (x, h - m - ((h - 2 * m) as f64 * f) as i64)
    };
    for r in runs {
        let mut prev = (m, h - m);
        for (e, &f) in r.curve.iter().enumerate() {
            let p = px(e, f);
            c.line(prev, p, r.colour);
            prev = p;
        }
    }
    for (i, r) in runs.iter().enumerate() {
        c.rect(m + i as i64 * 40, h - 18, 30, 10, r.colour);
    }
    c
}

/// Rows of held-out samples: image, ground truth, then each loss's prediction.
fn grid(runs: &[Trained], test: &Data) -> Canvas {
    let s = test.side;
    let (k, gap) = (2i64, 4i64);
    let cell = s as i64 * k + gap;
    let rows = 4.min(test.n);
    let mut c = Canvas::new(
        ((2 + runs.len()) as i64 * cell + gap) as usize,
        (rows as i64 * cell + gap + 14) as usize,
        [255, 255, 255],
    );
    for (j, r) in runs.iter().enumerate() {
        c.rect(gap + (2 + j as i64) * cell, 4, s as i64 * k, 8, r.colour);
    }
    for i in 0..rows {
        let y = 14 + gap + i as i64 * cell;
        c.gray(gap, y, test.image(i), s, (-0.5, 1.5), k);
        let as_f32 = |m: &[u8]| m.iter().map(|&v| v as f32).collect::<Vec<_>>();
        c.gray(gap + cell, y, &as_f32(test.mask(i)), s, (0.0, 1.0), k);
        for (j, r) in runs.iter().enumerate() {
            c.gray(gap + (2 + j as i64) * cell, y, &as_f32(&r.pred[i * s * s..(i + 1) * s * s]), s, (0.0, 1.0), k);
        }
    }
    c
}

/// `xent demo`.
pub fn demo(a: &DemoArgs) -> Result<String> {
    ensure!(a.size >= 16, "--size must be at least 16");
    ensure!(a.epochs >= 1, "--epochs must be at least 1");
    let mut rng = Rng(a.seed);
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
    let mut rng = Rng(a.seed);
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
