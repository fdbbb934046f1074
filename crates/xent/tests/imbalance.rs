//! The imbalance losses (Dice, generalized Dice, Tversky, focal, Dice + CE): gradients against
//! central finite differences (with and without `ignore_index`), and the consistency their
//! definitions promise.

mod common;

use common::rng::Rng;
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

macro_rules! fb {
    ($loss:expr, $t:expr, $c:expr) => {{
        let loss = $loss;
        let t = $t.clone();
        let s = shape($c);
        Box::new(move |x: &[f64], go: &[f64]| {
            let mut g = vec![0.0; x.len()];
            let (xv, tv) = (View::new(x, &s).unwrap(), View::new(&t, &TSHAPE).unwrap());
            if go.is_empty() {
                return (loss.forward(xv, tv).unwrap().loss, vec![]);
            }
            let out = loss.forward_backward(xv, tv, &go, &mut g).unwrap();
            (out.loss, g)
        }) as Fb<'static>
    }};
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
                        weight,
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
                        weight: (seed % 2 == 0).then(|| vec![1.5, 0.5, 1.0][first..].to_vec()),
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
        dice: DiceOptions { ignore_index: Some(IGNORE), include_background: false, ..Default::default() },
        ce: CrossEntropyOptions {
            ignore_index: IGNORE,
            weight: Some(vec![0.2, 1.0, 3.0]),
            label_smoothing: 0.1,
            ..Default::default()
        },
        lambda_dice: 0.7,
        lambda_ce: 1.3,
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
                    weight: Some((first..c).map(|k| 0.5 + 0.1 * k as f64).collect()),
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
        weight: Some(w.clone()),
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
    let elements = f.denominator.value();
    assert_eq!(elements, t.iter().filter(|&&v| v != IGNORE).count() as f64 * 3.0);
    assert!((f.scalar().unwrap() * elements - c.scalar().unwrap()).abs() < 1e-12);
    assert!(gf.iter().zip(&gc).all(|(a, b)| (a * elements - b).abs() < 1e-12));
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
    assert_eq!(dice(Some(vec![1.0; 3])).loss, dice(None).loss);
    let focal = |weight| {
        FocalLoss::new(FocalOptions { weight, ignore_index: ii, activation: Activation::Softmax, ..Default::default() })
            .unwrap()
            .forward(xv, tv)
            .unwrap()
    };
    assert_eq!(focal(Some(vec![1.0; 3])).loss, focal(None).loss);
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
