//! Property tests: kernels against the plain reference (`xent::reference`), every gradient
//! against central finite differences (f64), and results bit-identical for 1, 2 and 3 threads.

use crate::common::rng::Rng;
use xent::reference as r;
use xent::*;

/// A loss under test: `f(x, go) -> (output, grad)` with grad of `sum(output * go)`, in f64.
type Fb<'a> = Box<dyn Fn(&[f64], &[f64]) -> (Vec<f64>, Vec<f64>) + 'a>;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// Central differences of `x -> sum(f(x) * go)` against the analytic gradient.
fn check_fd(name: &str, x: &[f64], go: &[f64], fb: &Fb<'_>) {
    let (_, grad) = fb(x, go);
    for i in 0..x.len() {
        let h = 1e-6 * x[i].abs().max(1.0);
        let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
        xp[i] += h;
        xm[i] -= h;
        let fd = (dot(&fb(&xp, go).0, go) - dot(&fb(&xm, go).0, go)) / (2.0 * h);
        assert!(
            (fd - grad[i]).abs() <= 1e-6 + 1e-5 * grad[i].abs(),
            "{name}: d/dx[{i}] = {}, differences {fd}",
            grad[i]
        );
    }
}

fn assert_close(name: &str, got: &[f64], want: &[f64], rtol: f64) {
    assert_eq!(got.len(), want.len(), "{name}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || (g - w).abs() <= rtol * (1.0 + w.abs());
        assert!(ok, "{name}[{i}]: {g} vs reference {w}");
    }
}

fn shapes(rng: &mut Rng, c: usize) -> Vec<Vec<usize>> {
    let mut d = || 1 + rng.below(4);
    vec![vec![c], vec![d(), c], vec![d(), c, d()], vec![d(), c, d(), d()]]
}

const REDUCTIONS: [&str; 3] = ["none", "mean", "sum"];

fn go_for(rng: &mut Rng, out_len: usize) -> Vec<f64> {
    (0..out_len).map(|_| rng.range(0.5, 1.5)).collect()
}

fn index_targets(rng: &mut Rng, n: usize, c: usize, ignore: i64) -> Vec<i64> {
    (0..n).map(|_| if rng.uniform() < 0.2 { ignore } else { rng.below(c) as i64 }).collect()
}

/// Runs the f64 and f32 versions of a loss against the reference and finite differences.
fn check_loss(name: &str, x: &[f64], out_len: usize, reference: Vec<f64>, fb64: Fb<'_>, fb32: Fb<'_>, rng: &mut Rng) {
    let go = go_for(rng, out_len);
    let (out64, _) = fb64(x, &go);
    assert_close(&format!("{name} f64"), &out64, &reference, 1e-12);
    let (out32, _) = fb32(x, &go);
    assert_close(&format!("{name} f32"), &out32, &reference, 2e-5);
    check_fd(name, x, &go, &fb64);
}

fn widen<T: Float>(v: &[T]) -> Vec<f64> {
    v.iter().map(|v| v.to_f64()).collect()
}
fn narrow<T: Float>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&v| T::from_f64(v)).collect()
}

fn ce_fb<'a, T: Float>(shape: &'a [usize], target: &'a [i64], opts: CrossEntropyOptions<f64>, nll: bool) -> Fb<'a> {
    let tshape: Vec<usize> = if shape.len() == 1 { vec![] } else { [&shape[..1], &shape[2..]].concat() };
    Box::new(move |x, go| {
        let (x, go) = (narrow::<T>(x), narrow::<T>(go));
        let weight = opts.weight.as_ref().map(|w| narrow::<T>(w));
        let mut g = vec![T::ZERO; x.len()];
        let t = View::new(target, &tshape).unwrap();
        let input = View::new(&x, shape).unwrap();
        let out = if nll {
            NllLoss::new(NllOptions {
                weight,
                ignore_index: opts.ignore_index,
                reduction: opts.reduction,
                ..Default::default()
            })
            .unwrap()
            .forward_backward(input, t, &go, &mut g)
        } else {
            CrossEntropyLoss::new(CrossEntropyOptions {
                weight,
                ignore_index: opts.ignore_index,
                reduction: opts.reduction,
                label_smoothing: opts.label_smoothing,
                empty_mean: opts.empty_mean,
            })
            .unwrap()
            .forward_backward(input, t, &go, &mut g)
        };
        (widen(&out.unwrap().loss), widen(&g))
    })
}

#[test]
fn cross_entropy_and_nll_match_reference_and_finite_differences() {
    let mut rng = Rng::new(1);
    // 70: rows longer than a scratch tile holds.
    for c in [1, 2, 3, 7, 70] {
        for shape in shapes(&mut rng, c) {
            for red in REDUCTIONS {
                for nll in [false, true] {
                    let n: usize = shape.iter().product::<usize>() / c;
                    let x = rng.vec(n * c, 3.0);
                    let ignore = if rng.uniform() < 0.5 { -100 } else { (c as i64) - 1 };
                    let target = index_targets(&mut rng, n, c, ignore);
                    let weight = (rng.uniform() < 0.5).then(|| (0..c).map(|_| rng.range(0.1, 2.0)).collect::<Vec<_>>());
                    let smoothing = if nll || rng.uniform() < 0.5 { 0.0 } else { rng.range(0.0, 0.5) };
                    let opts = CrossEntropyOptions {
                        weight: weight.clone(),
                        ignore_index: ignore,
                        reduction: red.parse::<Reduction>().unwrap(),
                        label_smoothing: smoothing,
                        ..Default::default()
                    };
                    let reference = r::index_loss(&x, &shape, &target, weight.as_deref(), ignore, smoothing, red, nll);
                    let out_len = reference.len();
                    let name = format!("{} C{c} {shape:?} {red}", if nll { "nll" } else { "ce" });
                    if reference.iter().any(|v| v.is_nan()) {
                        continue; // every target ignored: no gradient to check
                    }
                    check_loss(
                        &name,
                        &x,
                        out_len,
                        reference,
                        ce_fb::<f64>(&shape, &target, opts.clone(), nll),
                        ce_fb::<f32>(&shape, &target, opts, nll),
                        &mut rng,
                    );
                }
            }
        }
    }
}

fn probs_fb<'a, T: Float>(shape: &'a [usize], y: &'a [f64], opts: CrossEntropyOptions<f64>) -> Fb<'a>
where
    CrossEntropyLoss<T>: Loss<T, T>,
{
    Box::new(move |x, go| {
        let (x, go, y) = (narrow::<T>(x), narrow::<T>(go), narrow::<T>(y));
        let weight = opts.weight.as_ref().map(|w| narrow::<T>(w));
        let loss = CrossEntropyLoss::new(CrossEntropyOptions {
            weight,
            reduction: opts.reduction,
            label_smoothing: opts.label_smoothing,
            ..Default::default()
        })
        .unwrap();
        let mut g = vec![T::ZERO; x.len()];
        let out =
            loss.forward_backward(View::new(&x, shape).unwrap(), View::new(&y, shape).unwrap(), &go, &mut g).unwrap();
        (widen(&out.loss), widen(&g))
    })
}

#[test]
fn cross_entropy_probability_targets_match_reference_and_finite_differences() {
    let mut rng = Rng::new(2);
    // 70: rows longer than a scratch tile holds.
    for c in [1, 2, 5, 70] {
        for shape in shapes(&mut rng, c) {
            for red in REDUCTIONS {
                let x = rng.vec(shape.iter().product(), 2.0);
                let y: Vec<f64> = (0..x.len()).map(|_| rng.uniform()).collect();
                let weight = (rng.uniform() < 0.5).then(|| (0..c).map(|_| rng.range(0.1, 2.0)).collect::<Vec<_>>());
                let smoothing = if rng.uniform() < 0.5 { 0.0 } else { 0.2 };
                let opts = CrossEntropyOptions {
                    weight: weight.clone(),
                    reduction: red.parse::<Reduction>().unwrap(),
                    label_smoothing: smoothing,
                    ..Default::default()
                };
                let reference = r::cross_entropy_probs(&x, &shape, &y, weight.as_deref(), smoothing, red);
                let n = reference.len();
                check_loss(
                    &format!("ce probs C{c} {shape:?} {red}"),
                    &x,
                    n,
                    reference,
                    probs_fb::<f64>(&shape, &y, opts.clone()),
                    probs_fb::<f32>(&shape, &y, opts),
                    &mut rng,
                );
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Binary {
    BceLoss,
    Logits,
    Focal(f64, f64),
}

fn binary_fb<'a, T: Float>(
    kind: Binary,
    shape: &'a [usize],
    y: &'a [f64],
    w: Option<&'a [f64]>,
    q: Option<&'a [f64]>,
    red: &'a str,
) -> Fb<'a> {
    Box::new(move |x, go| {
        let (x, go, y) = (narrow::<T>(x), narrow::<T>(go), narrow::<T>(y));
        let reduction = red.parse::<Reduction>().unwrap();
        let t = |v: Option<&[f64]>| v.map(|v| WeightTensor::new(narrow::<T>(v), shape.to_vec()).unwrap());
        let (input, target) = (View::new(&x, shape).unwrap(), View::new(&y, shape).unwrap());
        let mut g = vec![T::ZERO; x.len()];
        let out = match kind {
            Binary::BceLoss => BceLoss::new(BceOptions { weight: t(w), reduction, ..Default::default() })
                .unwrap()
                .forward_backward(input, target, &go, &mut g),
            Binary::Logits => BceWithLogitsLoss::new(BceWithLogitsOptions {
                weight: t(w),
                pos_weight: t(q),
                reduction,
                ..Default::default()
            })
            .unwrap()
            .forward_backward(input, target, &go, &mut g),
            Binary::Focal(alpha, gamma) => {
                SigmoidFocalLoss::new(SigmoidFocalOptions { alpha, gamma, reduction, ..Default::default() })
                    .unwrap()
                    .forward_backward(input, target, &go, &mut g)
            }
        };
        (widen(&out.unwrap().loss), widen(&g))
    })
}

#[test]
fn binary_losses_match_reference_and_finite_differences() {
    let mut rng = Rng::new(3);
    for kind in
        [Binary::BceLoss, Binary::Logits, Binary::Focal(0.25, 2.0), Binary::Focal(-1.0, 1.5), Binary::Focal(0.6, 0.0)]
    {
        for shape in [vec![5], vec![3, 4], vec![2, 3, 2, 2]] {
            for red in REDUCTIONS {
                let n: usize = shape.iter().product();
                let x: Vec<f64> = match kind {
                    Binary::BceLoss => (0..n).map(|_| rng.range(0.05, 0.95)).collect(),
                    _ => rng.vec(n, 3.0),
                };
                let y: Vec<f64> = (0..n)
                    .map(|_| if rng.uniform() < 0.5 { rng.uniform() } else { f64::from(rng.uniform() < 0.3) })
                    .collect();
                let w = (rng.uniform() < 0.5).then(|| (0..n).map(|_| rng.range(0.0, 2.0)).collect::<Vec<_>>());
                let q = (rng.uniform() < 0.5).then(|| (0..n).map(|_| rng.range(0.5, 10.0)).collect::<Vec<_>>());
                let (w, q) = match kind {
                    Binary::BceLoss => (w, None),
                    Binary::Logits => (w, q),
                    Binary::Focal(..) => (None, None),
                };
                let reference = match kind {
                    Binary::BceLoss => r::bce(&x, &y, w.as_deref(), red),
                    Binary::Logits => r::bce_with_logits(&x, &y, w.as_deref(), q.as_deref(), red),
                    Binary::Focal(a, g) => r::sigmoid_focal(&x, &y, a, g, red),
                };
                let out_len = reference.len();
                check_loss(
                    &format!("binary {shape:?} {red}"),
                    &x,
                    out_len,
                    reference,
                    binary_fb::<f64>(kind, &shape, &y, w.as_deref(), q.as_deref(), red),
                    binary_fb::<f32>(kind, &shape, &y, w.as_deref(), q.as_deref(), red),
                    &mut rng,
                );
            }
        }
    }
}

#[test]
fn softmax_and_log_softmax_match_reference_and_finite_differences() {
    let mut rng = Rng::new(4);
    // [3, 70] along 1: rows longer than a scratch tile holds; along 0: 70 strided positions.
    for shape in [vec![5], vec![3, 4], vec![2, 3, 4], vec![2, 1, 3, 2], vec![3, 70]] {
        for dim in 0..shape.len() {
            for log in [false, true] {
                let x = rng.vec(shape.iter().product(), 3.0);
                let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let v32 = View::new(&x32, &shape).unwrap();
                let y32 = if log { log_softmax(v32, dim as i64) } else { softmax(v32, dim as i64) }.unwrap();
                let fb: Fb<'_> = Box::new(|x, go| {
                    let v = View::new(x, &shape).unwrap();
                    let y = if log { log_softmax(v, dim as i64) } else { softmax(v, dim as i64) }.unwrap();
                    let mut g = vec![0.0; x.len()];
                    let (yv, gv) = (View::new(&y, &shape).unwrap(), View::new(go, &shape).unwrap());
                    if log {
                        log_softmax_backward_into(yv, gv, dim as i64, &mut g).unwrap();
                    } else {
                        softmax_backward_into(yv, gv, dim as i64, &mut g).unwrap();
                    }
                    (y, g)
                });
                let reference = if log { r::log_softmax(&x, &shape, dim) } else { r::softmax(&x, &shape, dim) };
                let go = go_for(&mut rng, x.len());
                assert_close("softmax", &fb(&x, &go).0, &reference, 1e-12);
                assert_close("softmax f32", &widen(&y32), &reference, 2e-6);
                check_fd(&format!("softmax log={log} {shape:?} d{dim}"), &x, &go, &fb);
            }
        }
    }
}

/// Large enough to span many blocks, so threads really split the work.
#[test]
fn results_are_bit_identical_for_any_thread_count() {
    let mut rng = Rng::new(5);
    let pools: Vec<_> =
        [1, 2, 3].iter().map(|&n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap()).collect();
    for shape in [vec![3, 19, 97, 131], vec![40000, 7], vec![2, 3, 50000], vec![100000, 2]] {
        let c = shape[1];
        let n: usize = shape.iter().product();
        let x: Vec<f32> = rng.vec(n, 3.0).into_iter().map(|v| v as f32).collect();
        let target: Vec<u8> = (0..n / c).map(|_| if rng.uniform() < 0.05 { 255 } else { rng.below(c) as u8 }).collect();
        let tshape: Vec<usize> = [&shape[..1], &shape[2..]].concat();
        let weight: Vec<f32> = (0..c).map(|_| rng.range(0.5, 2.0) as f32).collect();
        let ce = CrossEntropyLoss::new(CrossEntropyOptions {
            weight: Some(weight),
            ignore_index: 255,
            label_smoothing: 0.1,
            ..Default::default()
        })
        .unwrap();
        let y: Vec<f32> = (0..n).map(|_| rng.uniform() as f32).collect();
        let bce = BceWithLogitsLoss::new(BceWithLogitsOptions::default()).unwrap();
        let run = || {
            let (xv, tv) = (View::new(&x, &shape).unwrap(), View::new(&target, &tshape).unwrap());
            let mut g = vec![0.0f32; n];
            let a = ce.forward_backward(xv, tv, &[1.0], &mut g).unwrap();
            let mut g2 = vec![0.0f32; n];
            let b = bce.forward_backward(xv, View::new(&y, &shape).unwrap(), &[1.0], &mut g2).unwrap();
            let s = softmax(xv, 1).unwrap();
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            (
                a.weighted_sum.value().to_bits(),
                bits(&a.loss),
                bits(&g),
                b.weighted_sum.value().to_bits(),
                bits(&g2),
                bits(&s),
            )
        };
        let results: Vec<_> = pools.iter().map(|p| p.install(run)).collect();
        assert!(results.windows(2).all(|w| w[0] == w[1]), "thread counts disagree for {shape:?}");
    }
}

/// The seg19 situation in small: an f32 mean over many positions agrees with the f64 reference.
#[test]
fn f32_cross_entropy_mean_over_many_positions_matches_f64_reference() {
    let mut rng = Rng::new(6);
    let shape = [2, 19, 64, 128];
    let n: usize = shape.iter().product();
    let x = rng.vec(n, 3.0);
    let target: Vec<i64> = (0..n / 19).map(|_| if rng.uniform() < 0.05 { 255 } else { rng.below(19) as i64 }).collect();
    let reference = r::index_loss(&x, &shape, &target, None, 255, 0.0, "mean", false)[0];
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let ce = CrossEntropyLoss::new(CrossEntropyOptions { ignore_index: 255, ..Default::default() }).unwrap();
    let got = ce.forward(View::new(&x32, &shape).unwrap(), View::new(&target, &[2, 64, 128]).unwrap()).unwrap();
    let rel = (got.scalar().unwrap() as f64 - reference).abs() / reference;
    assert!(rel < 1e-6, "relative error {rel}");
}

/// Two classes take their own one-pass path, with positions strided (`[N, 2, d..]`, the seed's
/// case) and as rows (`[N, 2]`, through a scratch tile); on extreme and non-finite logits both
/// must agree with the reference loss and with the gradient `go w_t (p_c - [c = t])` computed
/// in f64, NaN where `log_softmax` gives NaN, 0 where the target is ignored.
#[test]
fn two_class_path_agrees_on_extreme_and_non_finite_logits() {
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let vals = [0.0f32, 1.5, -2.0, 30.0, -30.0, 100.0, -100.0, 1e30, -1e30, inf, -inf, nan];
    let (mut x0, mut x1, mut t) = (vec![], vec![], vec![]);
    for (i, &a) in vals.iter().enumerate() {
        for (j, &c) in vals.iter().enumerate() {
            for k in [0i64, 1, -100] {
                x0.push(a);
                x1.push(c);
                t.push(if (i + j) % 5 == 0 { k } else { (i + j) as i64 % 2 });
            }
        }
    }
    let n = x0.len();
    let strided: Vec<f32> = x0.iter().chain(&x1).copied().collect(); // [1, 2, n]
    let rows: Vec<f32> = x0.iter().zip(&x1).flat_map(|(&a, &c)| [a, c]).collect(); // [n, 2]
    let w = vec![0.7f32, 1.9];
    let ce = CrossEntropyLoss::new(CrossEntropyOptions {
        weight: Some(w.clone()),
        reduction: Reduction::None,
        ..Default::default()
    })
    .unwrap();
    let go: Vec<f32> = (0..n).map(|i| 0.5 + (i % 3) as f32).collect();
    let (mut gs, mut gr) = (vec![0.0f32; 2 * n], vec![0.0f32; 2 * n]);
    let ls = ce
        .forward_backward(View::new(&strided, &[1, 2, n]).unwrap(), View::new(&t, &[1, n]).unwrap(), &go, &mut gs)
        .unwrap();
    let lr =
        ce.forward_backward(View::new(&rows, &[n, 2]).unwrap(), View::new(&t, &[n]).unwrap(), &go, &mut gr).unwrap();
    let x64: Vec<f64> = strided.iter().map(|&v| v as f64).collect();
    let w64: Vec<f64> = w.iter().map(|&v| v as f64).collect();
    let reference = r::index_loss(&x64, &[1, 2, n], &t, Some(&w64), -100, 0.0, "none", false);
    let same = |a: f64, b: f64| (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-6 * (1.0 + b.abs());
    for i in 0..n {
        let what = format!("x = ({}, {}), target {}", x0[i], x1[i], t[i]);
        for (path, l) in [("strided", ls.loss[i]), ("rows", lr.loss[i])] {
            assert!(same(l as f64, reference[i]), "{path} loss {l} vs reference {}: {what}", reference[i]);
        }
        let row = [x0[i] as f64, x1[i] as f64];
        let m = row[0].max(row[1]);
        let ln_s = row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        for c in 0..2 {
            let want = match usize::try_from(t[i]) {
                Ok(k) => {
                    let p = ((row[c] - m) - ln_s).exp();
                    go[i] as f64 * w64[k] * (p - f64::from(u8::from(c == k)))
                }
                Err(_) => 0.0, // ignored
            };
            for (path, g) in [("strided", gs[c * n + i]), ("rows", gr[2 * i + c])] {
                assert!(same(g as f64, want), "{path} grad[{c}] {g} vs {want}: {what}");
            }
        }
    }
}

/// log-softmax's backward takes `e^y` of whatever output it is given, as PyTorch does: values
/// above 0 (no log-softmax gives them) still get `g - e^y sum(g)`, strided and as rows.
#[test]
fn log_softmax_backward_takes_any_output() {
    let y: Vec<f32> = vec![0.5, -1.0, 2.0, -0.25, 1.0, -3.0];
    let g: Vec<f32> = vec![0.1, 0.2, -0.3, 0.4, 0.5, -0.6];
    for (shape, dim) in [(vec![2usize, 3], 1i64), (vec![3, 2], 0)] {
        let mut out = vec![0.0f32; 6];
        let (yv, gv) = (View::new(&y, &shape).unwrap(), View::new(&g, &shape).unwrap());
        log_softmax_backward_into(yv, gv, dim, &mut out).unwrap();
        let want = |i: usize| {
            // The positions along `dim`: rows of [2, 3] along 1, columns of [3, 2] along 0.
            let group: Vec<usize> = if dim == 1 {
                (0..3).map(|c| i / 3 * 3 + c).collect()
            } else {
                (0..3).map(|c| c * 2 + i % 2).collect()
            };
            let sum: f64 = group.iter().map(|&k| g[k] as f64).sum();
            g[i] as f64 - (y[i] as f64).exp() * sum
        };
        for (i, &o) in out.iter().enumerate() {
            assert!((o as f64 - want(i)).abs() < 1e-5, "{shape:?} [{i}]: {o} vs {}", want(i));
        }
    }
}
