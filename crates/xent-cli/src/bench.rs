//! `xent bench`: the losses on realistic shapes (BENCHMARKS.md describes each), timed in process.
//!
//! Each workload builds its inputs once (fixed seeds, outside the timing), then times the forward
//! pass alone and the fused forward+backward into a preallocated gradient: median and minimum
//! over `--runs` runs after one warm-up, in ms and GB/s of logits bytes. Beside each, the time of
//! copying as many bytes (`copy ms`) and the ratios of forward and forward+backward to it
//! (`x copy`): how close each pass comes to the memory's own speed.

use anyhow::{bail, Result};
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;
use xent::weights::{batch_weights, AbsentClasses, ClassCounts, Scheme};
use xent::*;

/// Arguments of `xent bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A workload (seg19, seed2, cls1k, lm32k, bce, count, copy, cls2, cls19, softmax19, probs19,
    /// focal19, sigfocal19, tvfocal, bceprob, dice19, softdice19, candle19, candle-grads, lmhead,
    /// lmhead-gemm) or all.
    #[arg(long, default_value = "all")]
    pub workload: String,
    /// Threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Timed runs per measurement (after one warm-up).
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Output format: table or json (one object per line).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// The logits' type: f32, f64, bf16 or f16 (every workload of the losses and softmax in the
    /// core, and through candle; count and copy read no logits, and the lmhead workloads run in
    /// f32 only).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

/// The workloads that run in any `--dtype`.
const ANY_DTYPE: [&str; 15] = [
    "seg19",
    "seed2",
    "cls1k",
    "lm32k",
    "cls2",
    "cls19",
    "bce",
    "tvfocal",
    "bceprob",
    "softmax19",
    "probs19",
    "focal19",
    "sigfocal19",
    "dice19",
    "softdice19",
];

/// What `--dtype` names: an element type, made from the f32 values the workloads draw.
trait BenchType: Element {
    fn of(v: f32) -> Self;
    /// Bytes of the type: the digest hashes that many of [`bits`](Self::bits) (4 for f32, as
    /// before `--dtype`).
    const BYTES: usize;
    /// The value's bits.
    fn bits(self) -> u64;
}

macro_rules! bench_type {
    ($t:ty, $of:expr) => {
        impl BenchType for $t {
            fn of(v: f32) -> Self {
                $of(v)
            }
            const BYTES: usize = std::mem::size_of::<$t>();
            fn bits(self) -> u64 {
                u64::from(self.to_bits())
            }
        }
    };
}
bench_type!(f32, |v| v);
bench_type!(f64, f64::from);
bench_type!(bf16, bf16::from_f32);
bench_type!(f16, f16::from_f32);

/// Segmentation, the seed's binary case, classification and language-model rows, BCE, class
/// counting and a copy, then eight more that users meet: classification rows with
/// few classes, softmax, soft labels, MONAI's focal loss with softmax and with sigmoid,
/// torchvision's sigmoid focal loss, BCE on probabilities, and MONAI's Dice loss on class indices
/// and on soft labels; through candle; the language-model head of `linear_cross_entropy` and its
/// three matrix products alone.
const WORKLOADS: [&str; 21] = [
    "seg19",
    "seed2",
    "cls1k",
    "lm32k",
    "bce",
    "count",
    "copy",
    "cls2",
    "cls19",
    "softmax19",
    "probs19",
    "focal19",
    "sigfocal19",
    "tvfocal",
    "bceprob",
    "dice19",
    "softdice19",
    "candle19",
    "candle-grads",
    "lmhead",
    "lmhead-gemm",
];

use xent::testing::Rng;

/// Uniform in `[0, 1)`, as `f32`.
fn uniform(rng: &mut Rng) -> f32 {
    rng.uniform() as f32
}

/// Roughly normal(0, 2): a sum of uniforms.
fn logit(rng: &mut Rng) -> f32 {
    (uniform(rng) + uniform(rng) + uniform(rng) - 1.5) * 4.0
}

/// Median and minimum of `runs` timings of `f`, in ms.
fn time(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut t: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], t[0])
}

/// Median and minimum time of copying `bytes` into a preallocated buffer, split over the threads
/// like the kernels: the memory limit of this machine for that many bytes.
fn copy_time(bytes: usize, runs: usize) -> (f64, f64) {
    use rayon::prelude::*;
    let src: Vec<u8> = (0..bytes).map(|i| i as u8).collect();
    let mut dst = vec![0u8; bytes];
    time(runs, || {
        dst.par_chunks_mut(1 << 18).zip(black_box(&src).par_chunks(1 << 18)).for_each(|(d, s)| d.copy_from_slice(s));
        black_box(&dst);
    })
}

struct Row {
    workload: &'static str,
    bytes: usize,
    forward: (f64, f64),
    forward_backward: Option<(f64, f64)>,
    /// FNV-1a of the bits of what the workload computed (its loss, its gradient), to tell two
    /// builds' results apart bit for bit.
    digest: u64,
}

/// FNV-1a over the bits of the values.
fn digest<'a>(parts: impl IntoIterator<Item = &'a [f32]>) -> u64 {
    parts.into_iter().fold(FNV, fnv)
}

const FNV: u64 = 0xcbf2_9ce4_8422_2325;

/// [`fnv`] over values of a maths type (`f32`: its 4 bytes, `f64`: its 8).
fn fnv_math<T: Float>(h: u64, v: &[T]) -> u64 {
    if T::NAME == "f32" {
        fnv(h, &v.iter().map(|x| x.to_f64() as f32).collect::<Vec<f32>>())
    } else {
        fnv(h, &v.iter().map(|x| x.to_f64()).collect::<Vec<f64>>())
    }
}

/// FNV-1a of `h` continued over the bits of `v`.
fn fnv<E: BenchType>(mut h: u64, v: &[E]) -> u64 {
    for &x in v {
        for &b in &x.bits().to_le_bytes()[..E::BYTES] {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

/// bce's shape `[16, 1, 512, 512]`, its targets (about 3% ones) and its logits through `map`:
/// an element-wise loss's `forward` and `forward_backward` (into a preallocated gradient).
fn binary_workload<E: BenchType>(
    workload: &'static str,
    runs: usize,
    map: fn(f32) -> f32,
    loss: &dyn Loss<E, E, E::Math>,
) -> Result<Row> {
    let shape = [16usize, 1, 512, 512];
    let mut rng = Rng::new(5);
    let x: Vec<E> = (0..shape.iter().product()).map(|_| E::of(map(logit(&mut rng)))).collect();
    let y: Vec<E> = (0..x.len()).map(|_| E::of(f32::from(u8::from(uniform(&mut rng) < 0.03)))).collect();
    let (xv, yv) = (View::new(&x, &shape)?, View::new(&y, &shape)?);
    let mut g = vec![E::of(0.0); x.len()];
    let one = [<E::Math as Float>::ONE];
    let fwd = time(runs, || {
        black_box(loss.forward(xv, yv).unwrap());
    });
    let fb = time(runs, || drop(black_box(loss.forward_backward(xv, yv, &one, &mut g).unwrap())));
    let digest = fnv(fnv_math(FNV, &loss.forward(xv, yv)?.loss), &g);
    Ok(Row { workload, bytes: std::mem::size_of_val(&x[..]), forward: fwd, forward_backward: Some(fb), digest })
}

fn ce_workload<E: BenchType>(
    name: &'static str,
    shape: &[usize],
    runs: usize,
    target: impl Fn(&mut Rng, usize) -> i64,
    opts: CrossEntropyOptions<E::Math>,
) -> Result<Row>
where
    CrossEntropyLoss<E::Math>: Loss<E, i64, E::Math>,
{
    let mut rng = Rng::new(name.len() as u64);
    let x: Vec<E> = (0..shape.iter().product()).map(|_| E::of(logit(&mut rng))).collect();
    let tshape: Vec<usize> = [&shape[..1], &shape[2..]].concat();
    let classes = shape[1];
    let t: Vec<i64> = (0..tshape.iter().product()).map(|_| target(&mut rng, classes)).collect();
    let ce = CrossEntropyLoss::new(opts)?;
    let ce: &dyn Loss<E, i64, E::Math> = &ce;
    let (xv, tv) = (View::new(&x, shape)?, View::new(&t, &tshape)?);
    let mut g = vec![E::of(0.0); x.len()];
    let one = [<E::Math as Float>::ONE];
    let forward = time(runs, || {
        black_box(ce.forward(xv, tv).unwrap());
    });
    let fb = time(runs, || {
        black_box(ce.forward_backward(xv, tv, &one, &mut g).unwrap());
    });
    let digest = fnv(fnv_math(FNV, &ce.forward(xv, tv)?.loss), &g);
    Ok(Row { workload: name, bytes: std::mem::size_of_val(&x[..]), forward, forward_backward: Some(fb), digest })
}

/// The workloads of [`ANY_DTYPE`] in `E`.
fn run_typed<E: BenchType>(w: &str, runs: usize) -> Result<Row>
where
    CrossEntropyLoss<E::Math>: Loss<E, i64, E::Math> + Loss<E, u8, E::Math> + Loss<E, E, E::Math>,
    BceWithLogitsLoss<E::Math>: Loss<E, E, E::Math>,
    SigmoidFocalLoss<E::Math>: Loss<E, E, E::Math>,
    BceLoss<E::Math>: Loss<E, E, E::Math>,
    FocalLoss<E::Math>: Loss<E, u8, E::Math>,
    DiceLoss<E::Math>: Loss<E, u8, E::Math> + Loss<E, E, E::Math>,
{
    let m = |v: f64| <E::Math as Float>::from_f64(v);
    Ok(match w {
        "seg19" => {
            let weight = (0..19).map(|i| m(f64::from(0.5 + 1.5 * i as f32 / 19.0))).collect();
            ce_workload::<E>(
                "seg19",
                &[8, 19, 256, 512],
                runs,
                |r, c| if uniform(r) < 0.05 { 255 } else { r.next() as i64 % c as i64 },
                CrossEntropyOptions { weight: Some(weight), ignore_index: 255, ..Default::default() },
            )?
        }
        "cls1k" => ce_workload::<E>(
            "cls1k",
            &[16384, 1000],
            runs,
            |r, c| r.next() as i64 % c as i64,
            CrossEntropyOptions { label_smoothing: 0.1, ..Default::default() },
        )?,
        "lm32k" => ce_workload::<E>(
            "lm32k",
            &[4096, 32000],
            runs,
            |r, c| if uniform(r) < 0.1 { -100 } else { r.next() as i64 % c as i64 },
            CrossEntropyOptions::default(),
        )?,
        "bce" => {
            let l = BceWithLogitsLoss::new(BceWithLogitsOptions {
                pos_weight: Some(WeightTensor::new(vec![m(f64::from(32.3f32))], vec![1])?),
                ..Default::default()
            })?;
            binary_workload::<E>("bce", runs, |v| v, &l)?
        }
        "tvfocal" => {
            // torchvision's sigmoid_focal_loss (alpha 0.25, gamma 2), mean.
            let l = SigmoidFocalLoss::<E::Math>::new(SigmoidFocalOptions {
                reduction: Reduction::Mean,
                ..Default::default()
            })?;
            binary_workload::<E>("tvfocal", runs, |v| v, &l)?
        }
        "bceprob" => {
            // binary_cross_entropy on the logits through a sigmoid, mean.
            let l = BceLoss::<E::Math>::new(BceOptions::default())?;
            binary_workload::<E>("bceprob", runs, |v| 1.0 / (1.0 + (-v).exp()), &l)?
        }
        "cls2" => ce_workload::<E>("cls2", &[1 << 22, 2], runs, |r, c| r.next() as i64 % c as i64, Default::default())?,
        "cls19" => {
            ce_workload::<E>("cls19", &[1 << 20, 19], runs, |r, c| r.next() as i64 % c as i64, Default::default())?
        }
        "softmax19" | "probs19" => {
            // seg19's logits: softmax over the classes, or cross-entropy with soft labels.
            let shape = [8usize, 19, 256, 512];
            let mut rng = Rng::new(7);
            let x: Vec<E> = (0..shape.iter().product()).map(|_| E::of(logit(&mut rng))).collect();
            let xv = View::new(&x, &shape)?;
            let bytes = std::mem::size_of_val(&x[..]);
            if w == "softmax19" {
                let mut out = vec![<E::Math as Float>::ZERO; x.len()];
                let forward = time(runs, || softmax_into(xv, 1, &mut out).unwrap());
                let digest = fnv_math(FNV, &out);
                return Ok(Row { workload: "softmax19", bytes, forward, forward_backward: None, digest });
            }
            let mut out = vec![E::of(0.0); x.len()];
            let y: Vec<E> = (0..x.len()).map(|_| E::of(uniform(&mut rng) * (2.0 / 19.0))).collect();
            let yv = View::new(&y, &shape)?;
            let ce = CrossEntropyLoss::<E::Math>::new(CrossEntropyOptions::default())?;
            let ce: &dyn Loss<E, E, E::Math> = &ce;
            let one = [<E::Math as Float>::ONE];
            let forward = time(runs, || {
                black_box(ce.forward(xv, yv).unwrap());
            });
            let fb = time(runs, || {
                black_box(ce.forward_backward(xv, yv, &one, &mut out).unwrap());
            });
            let digest = fnv(fnv_math(FNV, &ce.forward(xv, yv)?.loss), &out);
            Row { workload: "probs19", bytes, forward, forward_backward: Some(fb), digest }
        }
        "seed2" => {
            // The seed's setting: the weights are the batch's inverse frequency, timed with the loss.
            let shape = [16usize, 2, 512, 512];
            let mut rng = Rng::new(2);
            let x: Vec<E> = (0..shape.iter().product()).map(|_| E::of(logit(&mut rng))).collect();
            let t: Vec<u8> = (0..16 * 512 * 512).map(|_| u8::from(uniform(&mut rng) < 0.03)).collect();
            let (xv, tv) = (View::new(&x, &shape)?, View::new(&t, &[16, 512, 512])?);
            let mut g = vec![E::of(0.0); x.len()];
            let one = [<E::Math as Float>::ONE];
            let loss = || {
                let w = batch_weights(tv, 2, None, Scheme::InverseFrequency, AbsentClasses::Zero).unwrap();
                // Cast through f32 as before --dtype (the f32 digest unchanged).
                CrossEntropyLoss::<E::Math>::new(CrossEntropyOptions {
                    weight: Some(w.iter().map(|&v| m(f64::from(v as f32))).collect()),
                    ..Default::default()
                })
                .unwrap()
            };
            let forward = time(runs, || {
                black_box(Loss::<E, u8, E::Math>::forward(&loss(), xv, tv).unwrap());
            });
            let fb = time(runs, || {
                black_box(Loss::<E, u8, E::Math>::forward_backward(&loss(), xv, tv, &one, &mut g).unwrap());
            });
            let digest = fnv(fnv_math(FNV, &Loss::<E, u8, E::Math>::forward(&loss(), xv, tv)?.loss), &g);
            Row { workload: "seed2", bytes: std::mem::size_of_val(&x[..]), forward, forward_backward: Some(fb), digest }
        }
        "focal19" | "sigfocal19" => {
            // seg19's shape: MONAI's focal loss with softmax (focal19) or sigmoid (its default),
            // gamma 2, mean, every pixel labelled.
            let shape = [8usize, 19, 256, 512];
            let mut rng = Rng::new(8);
            let x: Vec<E> = (0..shape.iter().product()).map(|_| E::of(logit(&mut rng))).collect();
            let t: Vec<u8> = (0..x.len() / 19).map(|_| (rng.next() % 19) as u8).collect();
            let (xv, tv) = (View::new(&x, &shape)?, View::new(&t, &[8, 256, 512])?);
            let focal = FocalLoss::<E::Math>::new(FocalOptions {
                activation: if w == "focal19" { Activation::Softmax } else { Activation::Sigmoid },
                ..Default::default()
            })?;
            let focal: &dyn Loss<E, u8, E::Math> = &focal;
            let mut g = vec![E::of(0.0); x.len()];
            let one = [<E::Math as Float>::ONE];
            let forward = time(runs, || {
                black_box(focal.forward(xv, tv).unwrap());
            });
            let fb = time(runs, || {
                black_box(focal.forward_backward(xv, tv, &one, &mut g).unwrap());
            });
            let workload = if w == "focal19" { "focal19" } else { "sigfocal19" };
            let digest = fnv(fnv_math(FNV, &focal.forward(xv, tv)?.loss), &g);
            Row { workload, bytes: std::mem::size_of_val(&x[..]), forward, forward_backward: Some(fb), digest }
        }
        "dice19" | "softdice19" => {
            // seg19's shape: MONAI's Dice loss with softmax, mean; dice19 on class indices with 5%
            // of the pixels ignored (255), softdice19 on soft labels (a softmax of noise).
            let shape = [8usize, 19, 256, 512];
            let mut rng = Rng::new(9);
            let x: Vec<E> = (0..shape.iter().product()).map(|_| E::of(logit(&mut rng))).collect();
            let dice = DiceLoss::<E::Math>::new(DiceOptions {
                ignore_index: (w == "dice19").then_some(255),
                ..Default::default()
            })?;
            let xv = View::new(&x, &shape)?;
            let mut g = vec![E::of(0.0); x.len()];
            let one = [<E::Math as Float>::ONE];
            let (forward, fb, loss) = if w == "dice19" {
                let t: Vec<u8> = (0..x.len() / 19)
                    .map(|_| if uniform(&mut rng) < 0.05 { 255 } else { (rng.next() % 19) as u8 })
                    .collect();
                let tv = View::new(&t, &[8, 256, 512])?;
                let dice: &dyn Loss<E, u8, E::Math> = &dice;
                let forward = time(runs, || {
                    black_box(dice.forward(xv, tv).unwrap());
                });
                let fb = time(runs, || {
                    black_box(dice.forward_backward(xv, tv, &one, &mut g).unwrap());
                });
                (forward, fb, dice.forward(xv, tv)?.loss)
            } else {
                let noise: Vec<f32> = (0..x.len()).map(|_| logit(&mut rng)).collect();
                let y: Vec<E> = softmax(View::new(&noise, &shape)?, 1)?.into_iter().map(E::of).collect();
                let yv = View::new(&y, &shape)?;
                let dice: &dyn Loss<E, E, E::Math> = &dice;
                let forward = time(runs, || {
                    black_box(dice.forward(xv, yv).unwrap());
                });
                let fb = time(runs, || {
                    black_box(dice.forward_backward(xv, yv, &one, &mut g).unwrap());
                });
                (forward, fb, dice.forward(xv, yv)?.loss)
            };
            let workload = if w == "dice19" { "dice19" } else { "softdice19" };
            let digest = fnv(fnv_math(FNV, &loss), &g);
            Row { workload, bytes: std::mem::size_of_val(&x[..]), forward, forward_backward: Some(fb), digest }
        }
        w => bail!("--workload {w:?} is not one of {ANY_DTYPE:?} (the workloads that take --dtype)"),
    })
}

/// The workloads that run in f32 only.
fn run_f32(w: &str, runs: usize) -> Result<Row> {
    Ok(match w {
        "count" => {
            let shape = [64usize, 512, 1024];
            let mut rng = Rng::new(6);
            let t: Vec<u8> = (0..shape.iter().product())
                .map(|_| if uniform(&mut rng) < 0.05 { 255 } else { (rng.next() % 19) as u8 })
                .collect();
            let tv = View::new(&t, &shape)?;
            let forward = time(runs, || {
                black_box(ClassCounts::from_images(tv, 19, Some(255)).unwrap());
            });
            let counts: Vec<f32> =
                ClassCounts::from_images(tv, 19, Some(255))?.pixels().iter().map(|&n| n as f32).collect();
            Row { workload: "count", bytes: t.len(), forward, forward_backward: None, digest: digest([&counts[..]]) }
        }
        "copy" => {
            let bytes = 8 * 19 * 256 * 512 * 4;
            Row { workload: "copy", bytes, forward: copy_time(bytes, runs), forward_backward: None, digest: 0 }
        }
        "lmhead" | "lmhead-gemm" => {
            // linear_cross_entropy of N = 2048 tokens, D = 1024, a vocabulary of 32000, 10% of
            // the targets ignored (lmhead); the three products z = x W^T, dx = z W, dW = z^T x
            // of the same sizes by faer, unchunked, as the bound (lmhead-gemm: the first as
            // "forward", all three as "fwd+bwd"). At most 3 runs: each takes seconds.
            let (n, d, c) = (2048usize, 1024usize, 32000usize);
            let runs = runs.min(3);
            let mut rng = Rng::new(11);
            let x: Vec<f32> = (0..n * d).map(|_| rng.normal(1.0) as f32).collect();
            let wt: Vec<f32> = (0..c * d).map(|_| rng.normal(0.02) as f32).collect();
            let t: Vec<i64> =
                (0..n).map(|_| if uniform(&mut rng) < 0.1 { -100 } else { (rng.next() % c as u64) as i64 }).collect();
            let bytes = (x.len() + wt.len()) * 4;
            let (mut gx, mut gw) = (vec![0.0f32; x.len()], vec![0.0f32; wt.len()]);
            if w == "lmhead-gemm" {
                use faer::{linalg::matmul::matmul, Accum, MatMut, MatRef, Par};
                let par = if threads_now() > 1 { Par::rayon(threads_now()) } else { Par::Seq };
                let (xm, wm) = (MatRef::from_row_major_slice(&x, n, d), MatRef::from_row_major_slice(&wt, c, d));
                let mut z = vec![0.0f32; n * c];
                let fwd = |z: &mut [f32]| {
                    matmul(MatMut::from_row_major_slice_mut(z, n, c), Accum::Replace, xm, wm.transpose(), 1.0, par)
                };
                let forward = time(runs, || fwd(&mut z));
                let fb = time(runs, || {
                    fwd(&mut z);
                    let zm = MatRef::from_row_major_slice(&z, n, c);
                    matmul(MatMut::from_row_major_slice_mut(&mut gx, n, d), Accum::Replace, zm, wm, 1.0, par);
                    matmul(
                        MatMut::from_row_major_slice_mut(&mut gw, c, d),
                        Accum::Replace,
                        zm.transpose(),
                        xm,
                        1.0,
                        par,
                    );
                });
                let digest = digest([&gx[..], &gw]);
                return Ok(Row { workload: "lmhead-gemm", bytes, forward, forward_backward: Some(fb), digest });
            }
            let lce = LinearCrossEntropy::new(LinearCrossEntropyOptions::default())?;
            let (xs, ws, ts) = ([n, d], [c, d], [n]);
            let linear = Linear { input: View::new(&x, &xs)?, weight: View::new(&wt, &ws)?, bias: None };
            let tv = View::new(&t, &ts)?;
            let forward = time(runs, || {
                black_box(lce.forward(linear, tv).unwrap());
            });
            let mut loss = 0.0;
            let fb = time(runs, || {
                let g = LinearGrads { grad_output: &[1.0], input: &mut gx, weight: &mut gw, bias: None };
                loss = lce.evaluate(linear, tv, Some(g)).unwrap().loss[0];
            });
            let digest = digest([&[loss][..], &gx, &gw]);
            Row { workload: "lmhead", bytes, forward, forward_backward: Some(fb), digest }
        }
        other => bail!("unknown workload {other:?}: one of {WORKLOADS:?} or all"),
    })
}

/// The threads of the pool the workloads run in.
fn threads_now() -> usize {
    rayon::current_num_threads()
}

/// Runs the command; returns what to print.
/// seg19 through candle, its logits in `dtype`: xent_candle::cross_entropy and candle's
/// backward() on a leaf (candle19); candle's own gradient bookkeeping for such a leaf alone, the
/// `zeros_like` and `add` its backward pass does (candle-grads, as "forward").
fn candle(w: &str, runs: usize, dtype: &str) -> Result<Row> {
    use candle_core::{DType, Device, Tensor, Var};
    let dt = match dtype {
        "f32" => DType::F32,
        "f64" => DType::F64,
        "bf16" => DType::BF16,
        "f16" => DType::F16,
        d => bail!("--dtype {d:?}: f32, f64, bf16 or f16"),
    };
    let shape = [8usize, 19, 256, 512];
    let mut rng = Rng::new(10);
    let x: Vec<f32> = (0..shape.iter().product()).map(|_| logit(&mut rng)).collect();
    let t: Vec<u8> =
        (0..x.len() / 19).map(|_| if uniform(&mut rng) < 0.05 { 255 } else { (rng.next() % 19) as u8 }).collect();
    let weight: Vec<f64> = (0..19).map(|i| 0.5 + 1.5 * f64::from(i) / 19.0).collect();
    let dev = Device::Cpu;
    let xv = Var::from_tensor(&Tensor::from_vec(x, &shape[..], &dev)?.to_dtype(dt)?)?;
    let tt = Tensor::from_vec(t, &[8usize, 256, 512][..], &dev)?;
    let opts = CrossEntropyOptions { weight: Some(weight), ignore_index: 255, ..Default::default() };
    let loss = || xent_candle::cross_entropy(xv.as_tensor(), &tt, &opts).unwrap();
    let bytes = shape.iter().product::<usize>() * dt.size_in_bytes();
    if w == "candle-grads" {
        let g = xv.as_tensor().ones_like()?;
        let forward = time(runs, || {
            black_box(xv.as_tensor().zeros_like().unwrap().add(&g).unwrap());
        });
        return Ok(Row {
            workload: "candle-grads",
            bytes,
            forward,
            forward_backward: None,
            digest: digest([&[0.0f32][..]]),
        });
    }
    let forward = time(runs, || {
        black_box(loss());
    });
    let fb = time(runs, || {
        black_box(loss().backward().unwrap());
    });
    let grads = loss().backward()?;
    let g = grads.get(xv.as_tensor()).unwrap().flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    let l = loss().to_dtype(DType::F32)?.to_scalar::<f32>()?;
    Ok(Row { workload: "candle19", bytes, forward, forward_backward: Some(fb), digest: digest([&[l][..], &g]) })
}

/// One workload in `dtype`.
fn run_one(w: &str, runs: usize, dtype: &str) -> Result<Row> {
    if w == "candle19" || w == "candle-grads" {
        return candle(w, runs, dtype);
    }
    if !ANY_DTYPE.contains(&w) {
        if dtype != "f32" {
            bail!("--workload {w} runs in f32 only (--dtype {dtype} takes {})", ANY_DTYPE.join(", "));
        }
        return run_f32(w, runs);
    }
    match dtype {
        "f32" => run_typed::<f32>(w, runs),
        "f64" => run_typed::<f64>(w, runs),
        "bf16" => run_typed::<bf16>(w, runs),
        "f16" => run_typed::<f16>(w, runs),
        d => bail!("--dtype {d:?}: f32, f64, bf16 or f16"),
    }
}

pub fn run(a: &Args) -> Result<String> {
    let threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    let json = match a.format.as_str() {
        "json" => true,
        "table" => false,
        f => bail!("--format {f:?}: table or json"),
    };
    let names: Vec<&str> = match (a.workload.as_str(), a.dtype.as_str()) {
        ("all", "f32") => WORKLOADS.to_vec(),
        ("all", _) => ANY_DTYPE.iter().copied().chain(["candle19", "candle-grads"]).collect(),
        (w, _) => vec![w],
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let mut out = String::new();
    if !json {
        let _ = writeln!(out, "{threads} thread(s), {}, median (min) of {} runs", a.dtype, a.runs);
        let _ = writeln!(
            out,
            "{:<8} {:>22} {:>22} {:>8} {:>8} {:>14}",
            "workload", "forward ms (GB/s)", "fwd+bwd ms (GB/s)", "MB", "copy ms", "x copy"
        );
    }
    for name in names {
        let r = pool.install(|| run_one(name, a.runs, &a.dtype))?;
        let copy = pool.install(|| copy_time(r.bytes, a.runs));
        let gbs = |ms: f64| r.bytes as f64 / (ms * 1e6);
        if json {
            let v = serde_json::json!({
                "workload": r.workload,
                "dtype": a.dtype,
                "threads": threads,
                "bytes": r.bytes,
                "forward_ms": r.forward.0,
                "forward_min_ms": r.forward.1,
                "forward_gb_s": gbs(r.forward.0),
                "forward_backward_ms": r.forward_backward.map(|t| t.0),
                "forward_backward_min_ms": r.forward_backward.map(|t| t.1),
                "forward_backward_gb_s": r.forward_backward.map(|t| gbs(t.0)),
                "copy_ms": copy.0,
                "digest": format!("{:016x}", r.digest),
            });
            let _ = writeln!(out, "{v}");
        } else {
            let fb = r.forward_backward.map_or("-".to_string(), |t| format!("{:.2} ({:.2}) {:.1}", t.0, t.1, gbs(t.0)));
            let ratio = match r.forward_backward {
                Some(t) => format!("{:.1} / {:.1}", r.forward.0 / copy.0, t.0 / copy.0),
                None => format!("{:.1}", r.forward.0 / copy.0),
            };
            let _ = writeln!(
                out,
                "{:<8} {:>22} {:>22} {:>8.1} {:>8.2} {:>14}",
                r.workload,
                format!("{:.2} ({:.2}) {:.1}", r.forward.0, r.forward.1, gbs(r.forward.0)),
                fb,
                r.bytes as f64 / 1e6,
                copy.0,
                ratio
            );
        }
    }
    Ok(out)
}
