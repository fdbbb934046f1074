//! The imbalance losses (Dice, generalized Dice, Tversky, focal, Dice + CE): gradients against
//! central finite differences (with and without `ignore_index`), and the consistency their
//! definitions promise.

use crate::common::rng::Rng;
use xent::loss::dice_ce::{DiceCeLoss, DiceCeOptions};
use xent::loss::focal::{FocalAlpha, FocalLoss, FocalOptions};

use xent::*;

const SHAPE: [usize; 4] = [2, 3, 3, 4];
const TSHAPE: [usize; 3] = [2, 3, 4];
const IGNORE: i64 = 255;

/// `f(x, go) -> (loss, grad of sum(loss * go))`; an empty `go` runs the forward pass alone.
type Fb<'a> = Box<dyn Fn(&[f64], &[f64]) -> (Vec<f64>, Vec<f64>) + 'a>;

fn check_fd(name: &str, x: &[f64], fb: &Fb<'_>) {
    let out_len = fb(x, &[]).0.len();
    let go: Vec<f64> = (0..out_len).map(|i| 0.5 + (i % 7) as f64 / 7.0).collect();
    let (_, grad) = fb(x, &go);
    let f = |x: &[f64]| fb(x, &go).0.iter().zip(&go).map(|(a, b)| a * b).sum::<f64>();
    for i in 0..x.len() {
        let h = 1e-6;
        let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
        xp[i] += h;
        xm[i] -= h;
        let fd = (f(&xp) - f(&xm)) / (2.0 * h);
        assert!(
            (fd - grad[i]).abs() <= 1e-6 + 1e-5 * grad[i].abs(),
            "{name}: d/dx[{i}] = {}, differences {fd}",
            grad[i]
        );
    }
}

fn data(seed: u64, ignore: bool, c: usize) -> (Vec<f64>, Vec<i64>) {
    let mut rng = Rng::new(seed);
    let n: usize = SHAPE.iter().product::<usize>() / SHAPE[1] * c;
    let x = rng.vec(n, 1.5);
    let t = (0..n / c).map(|_| if ignore && rng.uniform() < 0.25 { IGNORE } else { rng.below(c) as i64 }).collect();
    (x, t)
}

fn shape(c: usize) -> [usize; 4] {
    [SHAPE[0], c, SHAPE[2], SHAPE[3]]
}

/// `f(x, go)` of `loss` on scores of shape `xs` and targets `t` of shape `ts`.
macro_rules! fb_shaped {
    ($loss:expr, $t:expr, $xs:expr, $ts:expr) => {{
        let loss = $loss;
        let t = $t.clone();
        let (xs, ts): (Vec<usize>, Vec<usize>) = ($xs.to_vec(), $ts.to_vec());
        Box::new(move |x: &[f64], go: &[f64]| {
            let mut g = vec![0.0; x.len()];
            let (xv, tv) = (View::new(x, &xs).unwrap(), View::new(&t, &ts).unwrap());
            if go.is_empty() {
                return (loss.forward(xv, tv).unwrap().loss, vec![]);
            }
            let out = loss.forward_backward(xv, tv, &go, &mut g).unwrap();
            (out.loss, g)
        }) as Fb<'static>
    }};
}

/// [`fb_shaped!`] for `[2, c, 3, 4]` scores and `[2, 3, 4]` class indices.
macro_rules! fb {
    ($loss:expr, $t:expr, $c:expr) => {
        fb_shaped!($loss, $t, shape($c), TSHAPE)
    };
}

#[test]
fn dice_gradients_match_finite_differences() {
    let mut seed = 0;
    for activation in [Activation::Softmax, Activation::Sigmoid, Activation::Identity] {
        for (squared_pred, jaccard, batch, include_background) in [
            (false, false, false, true),
            (true, false, true, false),
            (false, true, false, false),
            (true, true, true, true),
        ] {
            for ignore in [false, true] {
                for reduction in [Reduction::Mean, Reduction::Sum, Reduction::None] {
                    seed += 1;
                    let (mut x, t) = data(seed, ignore, 3);
                    if activation == Activation::Identity {
                        x.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp()));
                    }
                    let weight =
                        (seed % 2 == 0).then(|| vec![0.5, 2.0, 1.0][usize::from(!include_background)..].to_vec());
                    let loss = DiceLoss::new(DiceOptions {
                        activation,
                        include_background,
                        squared_pred,
                        jaccard,
                        batch,
                        weight: weight.map(ClassWeight::from),
                        ignore_index: ignore.then_some(IGNORE),
                        reduction,
                        ..Default::default()
                    })
                    .unwrap();
                    check_fd(&format!("dice {seed}"), &x, &fb!(loss, t, 3));
                }
            }
        }
    }
}

#[test]
fn generalized_dice_and_tversky_gradients_match_finite_differences() {
    let mut seed = 100;
    for w_type in [WeightType::Square, WeightType::Simple, WeightType::Uniform] {
        for (batch, include_background, ignore) in [(false, true, false), (true, false, true), (false, false, true)] {
            for activation in [Activation::Softmax, Activation::Sigmoid] {
                seed += 1;
                let (x, t) = data(seed, ignore, 3);
                let reduction = [Reduction::Mean, Reduction::Sum, Reduction::None][seed as usize % 3];
                let ignore_index = ignore.then_some(IGNORE);
                let g = GeneralizedDiceLoss::new(GeneralizedDiceOptions {
                    activation,
                    include_background,
                    w_type,
                    batch,
                    ignore_index,
                    reduction,
                    ..Default::default()
                })
                .unwrap();
                check_fd(&format!("gdice {seed}"), &x, &fb!(g, t, 3));
                let tv = TverskyLoss::new(TverskyOptions {
                    activation,
                    include_background,
                    alpha: 0.3,
                    beta: 0.7,
                    batch,
                    ignore_index,
                    reduction,
                    ..Default::default()
                })
                .unwrap();
                check_fd(&format!("tversky {seed}"), &x, &fb!(tv, t, 3));
            }
        }
    }
}

#[test]
fn focal_gradients_match_finite_differences() {
    let mut seed = 200;
    for use_softmax in [true, false] {
        for include_background in [true, false] {
            for alpha in [FocalAlpha::None, FocalAlpha::Scalar(0.3), FocalAlpha::PerClass(vec![0.2, 0.5, 0.9])] {
                for ignore in [false, true] {
                    seed += 1;
                    let (x, t) = data(seed, ignore, 3);
                    let first = usize::from(!include_background);
                    let alpha = match alpha.clone() {
                        FocalAlpha::PerClass(a) => FocalAlpha::PerClass(a[first..].to_vec()),
                        a => a,
                    };
                    let loss = FocalLoss::new(FocalOptions {
                        include_background,
                        gamma: [0.0, 1.0, 2.0, 1.5][seed as usize % 4],
                        alpha,
                        weight: (seed % 2 == 0).then(|| vec![1.5, 0.5, 1.0][first..].to_vec().into()),
                        activation: if use_softmax { Activation::Softmax } else { Activation::Sigmoid },
                        ignore_index: ignore.then_some(IGNORE),
                        reduction: [Reduction::Mean, Reduction::Sum, Reduction::None][seed as usize % 3],
                    })
                    .unwrap();
                    check_fd(&format!("focal {seed}"), &x, &fb!(loss, t, 3));
                }
            }
        }
    }
}

#[test]
fn dice_ce_gradient_matches_finite_differences() {
    let (x, t) = data(300, true, 3);
    let loss = DiceCeLoss::new(DiceCeOptions {
        ignore_index: Some(IGNORE),
        include_background: false,
        weight: Some(vec![0.2, 1.0, 3.0]),
        label_smoothing: 0.1,
        lambda_dice: 0.7,
        lambda_ce: 1.3,
        ..Default::default()
    })
    .unwrap();
    check_fd("dice_ce", &x, &fb!(loss, t, 3));
}

/// The softmax focal loss of rows `[N, C, 1]` (each row a sample; `TILE` rows at a time through
/// a scratch tile) is that of the same positions laid out `[1, C, N]` (strided tiles): across
/// tile edges, with ignored pixels, weights, alpha, any gamma, with and without background.
#[test]
fn softmax_focal_rows_match_the_strided_layout() {
    let n = 300;
    for (c, gamma) in [(2, 2.0), (3, 0.5), (4, 0.0), (5, 1.0), (19, 2.0)] {
        let mut rng = Rng::new(500 + c as u64);
        let x = rng.vec(n * c, 3.0);
        let t: Vec<i64> = (0..n).map(|_| if rng.uniform() < 0.1 { IGNORE } else { rng.below(c) as i64 }).collect();
        let xs: Vec<f64> = (0..c * n).map(|i| x[(i % n) * c + i / n]).collect();
        for include_background in [true, false] {
            let first = usize::from(!include_background);
            let ci = c - first;
            for reduction in [Reduction::Mean, Reduction::None] {
                let loss = FocalLoss::new(FocalOptions {
                    include_background,
                    gamma,
                    alpha: FocalAlpha::Scalar(0.3),
                    // One included class takes one number (MONAI refuses a list there).
                    weight: Some(match ci {
                        1 => ClassWeight::Uniform(0.7),
                        _ => (first..c).map(|k| 0.5 + 0.1 * k as f64).collect::<Vec<_>>().into(),
                    }),
                    activation: Activation::Softmax,
                    ignore_index: Some(IGNORE),
                    reduction,
                })
                .unwrap();
                // Upstream per output element: [N, C', 1] for rows, [1, C', N] strided.
                let go: Vec<f64> = match reduction {
                    Reduction::None => (0..n * ci).map(|i| 0.5 + (i % 7) as f64 / 7.0).collect(),
                    _ => vec![1.0],
                };
                let gs: Vec<f64> = match reduction {
                    Reduction::None => (0..n * ci).map(|i| go[(i % n) * ci + i / n]).collect(),
                    _ => go.clone(),
                };
                let (mut gr, mut gst) = (vec![0.0; n * c], vec![0.0; n * c]);
                let r = loss
                    .forward_backward(View::new(&x, &[n, c, 1]).unwrap(), View::new(&t, &[n, 1]).unwrap(), &go, &mut gr)
                    .unwrap();
                let s = loss
                    .forward_backward(
                        View::new(&xs, &[1, c, n]).unwrap(),
                        View::new(&t, &[1, n]).unwrap(),
                        &gs,
                        &mut gst,
                    )
                    .unwrap();
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1e-3);
                let name = format!("C = {c}, gamma {gamma}, first {first}, {reduction:?}");
                assert_eq!(r.loss.len(), s.loss.len(), "{name}");
                for i in 0..r.loss.len() {
                    let j = if r.loss.len() == 1 { 0 } else { (i % n) * ci + i / n };
                    let (a, b) = if r.loss.len() == 1 { (r.loss[0], s.loss[0]) } else { (r.loss[j], s.loss[i]) };
                    assert!(close(a, b), "{name}: loss {i}: rows {a}, strided {b}");
                }
                for i in 0..n * c {
                    let (a, b) = (gr[(i % n) * c + i / n], gst[i]);
                    assert!(close(a, b), "{name}: grad {i}: rows {a}, strided {b}");
                }
                // (Softmax over one included class: q = 1, no gradient.)
                assert!(ci == 1 || gr.iter().any(|&v| v != 0.0), "{name}");
            }
        }
    }
}

/// Focal with gamma 0, softmax and no alpha is the cross-entropy, divided by the number of
/// classes in its mean (it averages over classes too); also with ignored pixels and weights.
#[test]
fn focal_with_gamma_zero_and_softmax_is_cross_entropy_over_classes() {
    let (x, t) = data(400, true, 3);
    let (xv, tv) = (View::new(&x, &SHAPE).unwrap(), View::new(&t, &TSHAPE).unwrap());
    let w = vec![0.3, 1.0, 2.5];
    let focal = FocalLoss::new(FocalOptions {
        gamma: 0.0,
        activation: Activation::Softmax,
        weight: Some(w.clone().into()),
        ignore_index: Some(IGNORE),
        ..Default::default()
    })
    .unwrap();
    // CE's weighted mean divides by the weights of the targets; with Sum both agree exactly.
    let ce = CrossEntropyLoss::new(CrossEntropyOptions {
        weight: Some(w),
        ignore_index: IGNORE,
        reduction: Reduction::Sum,
        ..Default::default()
    })
    .unwrap();
    let (mut gf, mut gc) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    let f = focal.forward_backward(xv, tv, &[1.0], &mut gf).unwrap();
    let c = ce.forward_backward(xv, tv, &[1.0], &mut gc).unwrap();
    // With ignore_index, MONAI's mean divides by the kept positions (not times the classes).
    let kept = f.denominator.value();
    assert_eq!(kept, t.iter().filter(|&&v| v != IGNORE).count() as f64);
    assert!((f.scalar().unwrap() * kept - c.scalar().unwrap()).abs() < 1e-12);
    assert!(gf.iter().zip(&gc).all(|(a, b)| (a * kept - b).abs() < 1e-12));
}

#[test]
fn dice_of_a_perfect_one_hot_prediction_is_zero() {
    let (_, t) = data(500, false, 3);
    // Logits of +-30 make the softmax one-hot to within e^-60.
    let mut x = vec![-30.0; SHAPE.iter().product()];
    let inner = SHAPE[2] * SHAPE[3];
    for (pos, &c) in t.iter().enumerate() {
        let (n, j) = (pos / inner, pos % inner);
        x[n * 3 * inner + c as usize * inner + j] = 30.0;
    }
    let (xv, tv) = (View::new(&x, &SHAPE).unwrap(), View::new(&t, &TSHAPE).unwrap());
    for jaccard in [false, true] {
        let d = DiceLoss::new(DiceOptions { jaccard, ..Default::default() }).unwrap().forward(xv, tv).unwrap();
        assert!(d.scalar().unwrap().abs() < 1e-9, "{d:?}");
    }
    let g = GeneralizedDiceLoss::new(Default::default()).unwrap().forward(xv, tv).unwrap();
    assert!(g.scalar().unwrap().abs() < 1e-9);
    let tv_loss = TverskyLoss::new(Default::default()).unwrap().forward(xv, tv).unwrap();
    assert!(tv_loss.scalar().unwrap().abs() < 1e-9);
}

#[test]
fn all_ones_class_weights_equal_no_weights() {
    let (x, t) = data(600, true, 3);
    let (xv, tv) = (View::new(&x, &SHAPE).unwrap(), View::new(&t, &TSHAPE).unwrap());
    let ii = Some(IGNORE);
    let dice = |weight| {
        DiceLoss::new(DiceOptions { weight, ignore_index: ii, ..Default::default() }).unwrap().forward(xv, tv).unwrap()
    };
    assert_eq!(dice(Some(vec![1.0; 3].into())).loss, dice(None).loss);
    assert_eq!(dice(Some(1.0.into())).loss, dice(None).loss);
    let focal = |weight| {
        FocalLoss::new(FocalOptions { weight, ignore_index: ii, activation: Activation::Softmax, ..Default::default() })
            .unwrap()
            .forward(xv, tv)
            .unwrap()
    };
    assert_eq!(focal(Some(vec![1.0; 3].into())).loss, focal(None).loss);
    assert_eq!(focal(Some(1.0.into())).loss, focal(None).loss);
    let ce = |weight| {
        CrossEntropyLoss::new(CrossEntropyOptions { weight, ignore_index: IGNORE, ..Default::default() })
            .unwrap()
            .forward(xv, tv)
            .unwrap()
    };
    assert_eq!(ce(Some(vec![1.0; 3])).loss, ce(None).loss);
}

/// Ignoring the last column gives the same Dice as cutting it off.
#[test]
fn ignored_pixels_leave_every_sum() {
    let (x, mut t) = data(700, false, 3);
    let (h, w) = (SHAPE[2], SHAPE[3]);
    for n in 0..SHAPE[0] {
        for i in 0..h {
            t[(n * h + i) * w + w - 1] = IGNORE;
        }
    }
    let cut_x: Vec<f64> = x.chunks(w).flat_map(|r| r[..w - 1].to_vec()).collect();
    let cut_t: Vec<i64> = t.chunks(w).flat_map(|r| r[..w - 1].to_vec()).collect();
    let (s1, t1) = ([SHAPE[0], 3, h, w - 1], [SHAPE[0], h, w - 1]);
    let full = (View::new(&x, &SHAPE).unwrap(), View::new(&t, &TSHAPE).unwrap());
    let cut = (View::new(&cut_x, &s1).unwrap(), View::new(&cut_t, &t1).unwrap());
    let ii = Some(IGNORE);
    let d = DiceLoss::new(DiceOptions { ignore_index: ii, ..Default::default() }).unwrap();
    assert!((d.forward(full.0, full.1).unwrap().loss[0] - d.forward(cut.0, cut.1).unwrap().loss[0]).abs() < 1e-14);
    let g = GeneralizedDiceLoss::new(GeneralizedDiceOptions { ignore_index: ii, ..Default::default() }).unwrap();
    assert!((g.forward(full.0, full.1).unwrap().loss[0] - g.forward(cut.0, cut.1).unwrap().loss[0]).abs() < 1e-14);
    let tv = TverskyLoss::new(TverskyOptions { ignore_index: ii, ..Default::default() }).unwrap();
    assert!((tv.forward(full.0, full.1).unwrap().loss[0] - tv.forward(cut.0, cut.1).unwrap().loss[0]).abs() < 1e-14);
    let f = FocalLoss::new(FocalOptions { ignore_index: ii, ..Default::default() }).unwrap();
    assert!((f.forward(full.0, full.1).unwrap().loss[0] - f.forward(cut.0, cut.1).unwrap().loss[0]).abs() < 1e-14);
}

#[test]
fn imbalance_losses_are_bit_identical_for_any_thread_count() {
    let mut rng = Rng::new(800);
    let shape = [3, 4, 150, 130];
    let n: usize = shape.iter().product();
    let x: Vec<f32> = rng.vec(n, 2.0).into_iter().map(|v| v as f32).collect();
    let t: Vec<u8> = (0..n / 4).map(|_| if rng.uniform() < 0.05 { 255 } else { rng.below(4) as u8 }).collect();
    let pools: Vec<_> =
        [1, 2, 3].iter().map(|&k| rayon::ThreadPoolBuilder::new().num_threads(k).build().unwrap()).collect();
    let run = || {
        let (xv, tv) = (View::new(&x, &shape).unwrap(), View::new(&t, &[3, 150, 130]).unwrap());
        let mut out = Vec::new();
        let mut g = vec![0.0f32; n];
        let d = DiceLoss::new(DiceOptions { ignore_index: Some(255), ..Default::default() }).unwrap();
        out.push(d.forward_backward(xv, tv, &[1.0], &mut g).unwrap().loss[0].to_bits());
        out.extend(g.iter().map(|v| v.to_bits()));
        let f = FocalLoss::new(FocalOptions {
            ignore_index: Some(255),
            activation: Activation::Softmax,
            ..Default::default()
        })
        .unwrap();
        out.push(f.forward_backward(xv, tv, &[1.0], &mut g).unwrap().loss[0].to_bits());
        out.extend(g.iter().map(|v| v.to_bits()));
        out
    };
    let results: Vec<_> = pools.iter().map(|p| p.install(run)).collect();
    assert!(results.windows(2).all(|w| w[0] == w[1]));
}

/// Soft labels in [0, 1] (MONAI's `soft_label=True`): Dice (plain, squared, Jaccard) and
/// Tversky, every activation, with and without background and batch.
#[test]
fn soft_label_gradients_match_finite_differences() {
    let mut seed = 900;
    for activation in [Activation::Softmax, Activation::Sigmoid, Activation::Identity] {
        for (squared_pred, jaccard, batch, include_background) in
            [(false, false, false, true), (true, false, true, false), (false, true, true, true)]
        {
            seed += 1;
            let mut rng = Rng::new(seed);
            let x = rng.vec(SHAPE.iter().product(), 1.5);
            // Exact 0 and 1 among the soft values, as real label maps have.
            let y: Vec<f64> = (0..x.len()).map(|i| if i % 5 == 0 { (i % 2) as f64 } else { rng.uniform() }).collect();
            let reduction = [Reduction::Mean, Reduction::Sum, Reduction::None][seed as usize % 3];
            let dice = DiceLoss::new(DiceOptions {
                activation,
                include_background,
                squared_pred,
                jaccard,
                batch,
                weight: Some(vec![0.5, 2.0, 1.0][usize::from(!include_background)..].to_vec().into()),
                reduction,
                ..Default::default()
            })
            .unwrap();
            check_fd(&format!("soft dice {seed}"), &x, &fb_shaped!(dice, y, SHAPE, SHAPE));
            let tv = TverskyLoss::new(TverskyOptions {
                activation,
                include_background,
                alpha: 0.3,
                beta: 0.7,
                batch,
                reduction,
                ..Default::default()
            })
            .unwrap();
            check_fd(&format!("soft tversky {seed}"), &x, &fb_shaped!(tv, y, SHAPE, SHAPE));
        }
    }
}

/// Soft labels that are one-hot give the class-index loss.
#[test]
fn one_hot_soft_labels_equal_class_indices() {
    let (x, t) = data(950, false, 3);
    let inner = SHAPE[2] * SHAPE[3];
    let mut y = vec![0.0; x.len()];
    for (pos, &c) in t.iter().enumerate() {
        y[(pos / inner) * 3 * inner + c as usize * inner + pos % inner] = 1.0;
    }
    let (xv, tv, yv) =
        (View::new(&x, &SHAPE).unwrap(), View::new(&t, &TSHAPE).unwrap(), View::new(&y, &SHAPE).unwrap());
    for batch in [false, true] {
        let dice = DiceLoss::new(DiceOptions { batch, ..Default::default() }).unwrap();
        let (a, b) = (dice.forward(xv, tv).unwrap().loss[0], dice.forward(xv, yv).unwrap().loss[0]);
        assert!((a - b).abs() < 1e-12, "dice: {a} vs {b}");
        let tversky = TverskyLoss::new(TverskyOptions { batch, alpha: 0.2, beta: 0.8, ..Default::default() }).unwrap();
        let (a, b) = (tversky.forward(xv, tv).unwrap().loss[0], tversky.forward(xv, yv).unwrap().loss[0]);
        assert!((a - b).abs() < 1e-12, "tversky: {a} vs {b}");
    }
}

/// `[N, C]` inputs: one score for the whole input without `batch` (spread over the classes by a
/// weight), one per class with it; the generalized Dice with `batch`.
#[test]
fn no_spatial_gradients_match_finite_differences() {
    let (n, c) = (7, 3);
    let mut rng = Rng::new(960);
    let x = rng.vec(n * c, 1.5);
    let t: Vec<i64> = (0..n).map(|i| if i == 3 { IGNORE } else { rng.below(c) as i64 }).collect();
    let mut k = 0;
    for batch in [false, true] {
        for weight in [None, Some(ClassWeight::Uniform(1.5)), Some(vec![0.5, 1.0, 2.0].into())] {
            for reduction in [Reduction::Mean, Reduction::Sum, Reduction::None] {
                k += 1;
                let activation = [Activation::Softmax, Activation::Sigmoid][k % 2];
                let ignore_index = (k % 3 == 0).then_some(IGNORE);
                let t: Vec<i64> =
                    t.iter().map(|&v| if v == IGNORE && ignore_index.is_none() { 0 } else { v }).collect();
                let dice = DiceLoss::new(DiceOptions {
                    activation,
                    batch,
                    squared_pred: k % 4 == 0,
                    weight: weight.clone(),
                    ignore_index,
                    reduction,
                    ..Default::default()
                })
                .unwrap();
                check_fd(&format!("[N, C] dice {k}"), &x, &fb_shaped!(dice, t, [n, c], [n]));
                let tv = TverskyLoss::new(TverskyOptions {
                    activation,
                    batch,
                    ignore_index,
                    reduction,
                    ..Default::default()
                })
                .unwrap();
                check_fd(&format!("[N, C] tversky {k}"), &x, &fb_shaped!(tv, t, [n, c], [n]));
            }
        }
    }
    // Soft labels go through the same per-position path.
    let y: Vec<f64> = (0..n * c).map(|_| rng.uniform()).collect();
    for (batch, squared_pred) in [(false, false), (true, true)] {
        let dice = DiceLoss::new(DiceOptions { batch, squared_pred, ..Default::default() }).unwrap();
        check_fd("[N, C] soft dice", &x, &fb_shaped!(dice, y, [n, c], [n, c]));
    }
    let g = GeneralizedDiceLoss::new(GeneralizedDiceOptions { batch: true, ..Default::default() }).unwrap();
    let t0: Vec<i64> = t.iter().map(|&v| if v == IGNORE { 1 } else { v }).collect();
    check_fd("[N, C] generalized dice", &x, &fb_shaped!(g, t0, [n, c], [n]));
}

/// Dice + focal, every reduction (`none` broadcasts the Dice part over the positions), with and
/// without `batch`; Dice + CE on one channel (binary cross-entropy with `pos_weight`).
#[test]
fn dice_focal_and_one_channel_dice_ce_gradients_match_finite_differences() {
    let (x, t) = data(970, true, 3);
    for (k, reduction) in [Reduction::Mean, Reduction::Sum, Reduction::None].into_iter().enumerate() {
        for batch in [false, true] {
            let loss = DiceFocalLoss::new(DiceFocalOptions {
                activation: [Activation::Softmax, Activation::Sigmoid][k % 2],
                include_background: batch,
                batch,
                gamma: 1.5,
                alpha: Some(0.3),
                weight: Some(if batch { vec![0.5, 1.0, 2.0].into() } else { ClassWeight::Uniform(1.5) }),
                lambda_dice: 0.7,
                lambda_focal: 1.3,
                ignore_index: Some(IGNORE),
                reduction,
                ..Default::default()
            })
            .unwrap();
            check_fd(&format!("dice_focal {reduction:?} {batch}"), &x, &fb!(loss, t, 3));
        }
    }
    let (x, _) = data(971, false, 1);
    let mut rng = Rng::new(972);
    let mask: Vec<i64> = (0..x.len()).map(|_| rng.below(2) as i64).collect();
    for (reduction, batch) in [(Reduction::Mean, false), (Reduction::Sum, true)] {
        let loss = DiceCeLoss::new(DiceCeOptions {
            activation: Activation::Sigmoid,
            batch,
            weight: Some(vec![2.5]),
            lambda_dice: 0.5,
            lambda_ce: 2.0,
            reduction,
            ..Default::default()
        })
        .unwrap();
        check_fd(&format!("one-channel dice_ce {reduction:?}"), &x, &fb!(loss, mask, 1));
    }
}
