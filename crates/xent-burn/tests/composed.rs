//! The compositions of burn ops (the path off the Flex backend) against xent's kernels, on Flex
//! with autodiff: the same loss and the same gradient (f64, to 1e-10 relative), and the same
//! errors for bad labels and shapes.

use burn_tensor::{DType, Device, Int, Tensor, TensorData};
use xent::testing::Rng;
use xent::*;

fn dev() -> Device {
    Device::flex().autodiff()
}

fn scores(shape: [usize; 4], rng: &mut Rng) -> Tensor<4> {
    let n = shape.iter().product();
    Tensor::<4>::from_data(TensorData::new(rng.vec(n, 2.0), shape), (&dev(), DType::F64)).require_grad()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

/// The loss and the gradient of `sum(loss * go)` through `f`, on a fresh copy of `x`.
fn run(x: &Tensor<4>, f: impl Fn(Tensor<4>) -> xent_burn::Result<Tensor<1>>) -> (Vec<f64>, Vec<f64>) {
    let x = Tensor::<4>::from_data(x.to_data(), (&dev(), DType::F64)).require_grad();
    let out = f(x.clone()).unwrap();
    let n = out.shape().num_elements();
    let go: Vec<f64> = (0..n).map(|i| 0.5 + (i % 7) as f64 / 7.0).collect();
    let go = Tensor::<1>::from_data(TensorData::new(go, [n]), (&dev(), DType::F64));
    let grads = (out.clone() * go).sum().backward();
    (values(out), values(x.grad(&grads).unwrap()))
}

fn assert_close(what: &str, a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-10 * (1.0 + y.abs()), "{what}[{i}]: composed {x}, kernels {y}");
    }
}

fn labels(n: usize, s: usize, classes: usize, ignore: i64, rng: &mut Rng) -> Tensor<3, Int> {
    let v: Vec<i64> = (0..n * s * s).map(|i| if i % 5 == 0 { ignore } else { rng.below(classes) as i64 }).collect();
    Tensor::<3, Int>::from_data(TensorData::new(v, [n, s, s]), &dev())
}

#[test]
fn class_index_losses_compose_as_the_kernels_compute() {
    let mut rng = Rng::new(3);
    let x = scores([2, 4, 3, 3], &mut rng);
    let t = labels(2, 3, 4, 255, &mut rng);
    for reduction in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        for (weight, smoothing) in
            [(None, 0.0), (Some(vec![0.5, 2.0, 0.0, 1.0]), 0.0), (Some(vec![1.0, 3.0, 0.5, 1.0]), 0.2)]
        {
            let o = CrossEntropyOptions {
                weight: weight.clone(),
                ignore_index: 255,
                reduction,
                label_smoothing: smoothing,
                ..Default::default()
            };
            let k = run(&x, |x| xent_burn::cross_entropy(x, t.clone(), &o));
            let c = run(&x, |x| xent_burn::cross_entropy_composed(x, t.clone(), &o));
            assert_close(&format!("ce {reduction:?} {weight:?} {smoothing} loss"), &c.0, &k.0);
            assert_close(&format!("ce {reduction:?} {weight:?} {smoothing} grad"), &c.1, &k.1);
            let o = NllOptions { weight, ignore_index: 255, reduction, ..Default::default() };
            let k = run(&x, |x| xent_burn::nll_loss(x, t.clone(), &o));
            let c = run(&x, |x| xent_burn::nll_loss_composed(x, t.clone(), &o));
            assert_close("nll loss", &c.0, &k.0);
            assert_close("nll grad", &c.1, &k.1);
        }
    }
}

#[test]
fn binary_losses_compose_as_the_kernels_compute() {
    let mut rng = Rng::new(5);
    let x = scores([2, 3, 2, 2], &mut rng);
    let y: Vec<f64> = (0..24).map(|_| rng.uniform()).collect();
    let y = Tensor::<4>::from_data(TensorData::new(y, [2, 3, 2, 2]), (&dev(), DType::F64));
    let w = WeightTensor::new(vec![0.5, 1.0, 2.0], vec![3, 1, 1]).unwrap();
    for reduction in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        let o = BceWithLogitsOptions {
            weight: Some(w.clone()),
            pos_weight: Some(w.clone()),
            reduction,
            ..Default::default()
        };
        let k = run(&x, |x| xent_burn::binary_cross_entropy_with_logits(x, y.clone(), &o));
        let c = run(&x, |x| xent_burn::binary_cross_entropy_with_logits_composed(x, y.clone(), &o));
        assert_close("bce logits loss", &c.0, &k.0);
        assert_close("bce logits grad", &c.1, &k.1);
        let o = SigmoidFocalOptions { reduction, ..Default::default() };
        let k = run(&x, |x| xent_burn::sigmoid_focal_loss(x, y.clone(), &o));
        let c = run(&x, |x| xent_burn::sigmoid_focal_loss_composed(x, y.clone(), &o));
        assert_close("sigmoid focal loss", &c.0, &k.0);
        assert_close("sigmoid focal grad", &c.1, &k.1);
        let o = BceOptions { weight: Some(w.clone()), reduction, ..Default::default() };
        let p = |x: Tensor<4>| burn_tensor::activation::sigmoid(x);
        let k = run(&x, |x| xent_burn::binary_cross_entropy(p(x), y.clone(), &o));
        let c = run(&x, |x| xent_burn::binary_cross_entropy_composed(p(x), y.clone(), &o));
        assert_close("bce loss", &c.0, &k.0);
        assert_close("bce grad", &c.1, &k.1);
    }
}

#[test]
fn both_paths_refuse_bad_labels_and_shapes_with_xents_error() {
    let mut rng = Rng::new(9);
    let x = scores([1, 3, 2, 2], &mut rng);
    let o = CrossEntropyOptions::default();
    let bad = Tensor::<3, Int>::from_data(TensorData::new(vec![0i64, 1, 3, 2], [1, 2, 2]), &dev());
    for e in
        [xent_burn::cross_entropy(x.clone(), bad.clone(), &o), xent_burn::cross_entropy_composed(x.clone(), bad, &o)]
    {
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains("value 3 at flat index 2 is out of range"), "{msg}");
    }
    let wrong = Tensor::<3, Int>::from_data(TensorData::new(vec![0i64; 6], [1, 2, 3]), &dev());
    for e in [
        xent_burn::cross_entropy(x.clone(), wrong.clone(), &o),
        xent_burn::cross_entropy_composed(x.clone(), wrong, &o),
    ] {
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains("target has shape [1, 2, 3]"), "{msg}");
    }
    let bad = Tensor::<3, Int>::from_data(TensorData::new(vec![0i64, 1, 3, 2], [1, 2, 2]), &dev());
    let dice = xent_burn::dice_loss_composed(x.clone(), bad, &DiceOptions::default());
    assert!(dice.unwrap_err().to_string().contains("value 3 at flat index 2 is out of range"));
    // Soft labels have no composition yet: an error that says so, not a number.
    let soft = Tensor::<4>::from_data(TensorData::new(vec![0.25f64; 12], [1, 3, 2, 2]), (&dev(), DType::F64));
    let dice = xent_burn::dice_loss_composed(x, soft, &DiceOptions::default());
    assert!(dice.unwrap_err().to_string().contains("no composition of burn ops yet"));
}

fn floats<const R: usize>(shape: [usize; R], rng: &mut Rng) -> Tensor<R> {
    let n = shape.iter().product();
    Tensor::<R>::from_data(TensorData::new(rng.vec(n, 1.0), shape), (&dev(), DType::F64)).require_grad()
}

/// linear_cross_entropy's loss and the gradients of input, weight and bias, for the upstream
/// `go` (`None`: `loss.backward()` itself, the upstream 1 the fused forward keeps gradients for).
fn run_linear<const D: usize, const K: usize>(
    x: &Tensor<D>,
    w: &Tensor<K>,
    b: &Tensor<1>,
    go: Option<f64>,
    f: impl Fn(Tensor<D>, Tensor<K>, Tensor<1>) -> xent_burn::Result<Tensor<1>>,
) -> [Vec<f64>; 4] {
    fn fresh<const R: usize>(t: &Tensor<R>) -> Tensor<R> {
        Tensor::from_data(t.to_data(), (&dev(), DType::F64)).require_grad()
    }
    let (x, w, b): (Tensor<D>, Tensor<K>, Tensor<1>) = (fresh(x), fresh(w), fresh(b));
    let out = f(x.clone(), w.clone(), b.clone()).unwrap();
    let grads = match go {
        None => out.backward(),
        Some(g) => (out.clone() * g).sum().backward(),
    };
    [values(out), values(x.grad(&grads).unwrap()), values(w.grad(&grads).unwrap()), values(b.grad(&grads).unwrap())]
}

#[test]
fn linear_cross_entropy_composes_as_the_kernels_compute() {
    let mut rng = Rng::new(11);
    let (n, d, c, k) = (6, 5, 4, 3);
    let x = floats([n, d], &mut rng);
    let x1 = floats([d], &mut rng);
    let w2 = floats([c, d], &mut rng);
    let w3 = floats([c, k, d], &mut rng);
    let (b2, b3) = (floats([c], &mut rng), floats([c * k], &mut rng));
    let t: Vec<i64> = (0..n).map(|i| if i == 2 { 255 } else { rng.below(c) as i64 }).collect();
    let t2 = Tensor::<1, Int>::from_data(TensorData::new(t, [n]), &dev());
    let t3: Vec<i64> = (0..n * k).map(|_| rng.below(c) as i64).collect();
    let t3 = Tensor::<2, Int>::from_data(TensorData::new(t3, [n, k]), &dev());
    let t1 = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64], [1]), &dev()).reshape([0usize; 0]);
    let p: Vec<f64> = (0..n * c).map(|_| rng.uniform()).collect();
    let p = Tensor::<2>::from_data(TensorData::new(p, [n, c]), (&dev(), DType::F64));
    let close = |what: &str, a: [Vec<f64>; 4], b: [Vec<f64>; 4]| {
        for (i, part) in ["loss", "d input", "d weight", "d bias"].iter().enumerate() {
            assert_close(&format!("{what} {part}"), &a[i], &b[i]);
        }
    };
    for reduction in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        for (weight, smoothing) in [(None, 0.0), (Some(vec![0.5, 2.0, 0.0, 1.0]), 0.1)] {
            let o = LinearCrossEntropyOptions {
                weight,
                ignore_index: Some(255),
                reduction,
                label_smoothing: smoothing,
                ..Default::default()
            };
            let what = format!("{reduction:?} {:?} {smoothing}", o.weight);
            let ups: &[Option<f64>] = if reduction == Reduction::None { &[Some(0.75)] } else { &[None, Some(0.75)] };
            for &go in ups {
                let lce = xent_burn::linear_cross_entropy::<2, 2>;
                let k = run_linear(&x, &w2, &b2, go, |x, w, b| lce(x, w, Some(b), t2.clone(), &o));
                let c = run_linear(&x, &w2, &b2, go, |x, w, b| {
                    xent_burn::linear_cross_entropy_composed(x, w, Some(b), t2.clone(), &o)
                });
                close(&format!("[N, D] {what} {go:?}"), c, k);
                let k = run_linear(&x, &w3, &b3, go, |x, w, b| {
                    xent_burn::linear_cross_entropy(x, w, Some(b), t3.clone(), &o)
                });
                let c = run_linear(&x, &w3, &b3, go, |x, w, b| {
                    xent_burn::linear_cross_entropy_composed(x, w, Some(b), t3.clone(), &o)
                });
                close(&format!("[C, k, D] {what} {go:?}"), c, k);
                let k = run_linear(&x1, &w2, &b2, go, |x, w, b| {
                    xent_burn::linear_cross_entropy(x, w, Some(b), t1.clone(), &o)
                });
                let c = run_linear(&x1, &w2, &b2, go, |x, w, b| {
                    xent_burn::linear_cross_entropy_composed(x, w, Some(b), t1.clone(), &o)
                });
                close(&format!("[D] {what} {go:?}"), c, k);
                let o = LinearCrossEntropyOptions { ignore_index: None, ..o.clone() };
                let k = run_linear(&x, &w2, &b2, go, |x, w, b| {
                    xent_burn::linear_cross_entropy(x, w, Some(b), p.clone(), &o)
                });
                let c = run_linear(&x, &w2, &b2, go, |x, w, b| {
                    xent_burn::linear_cross_entropy_composed(x, w, Some(b), p.clone(), &o)
                });
                close(&format!("probabilities {what} {go:?}"), c, k);
            }
        }
    }
}

#[test]
fn linear_cross_entropy_refuses_bad_shapes_on_both_paths() {
    let mut rng = Rng::new(12);
    let x = floats([3, 4], &mut rng);
    let t = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2], [3]), &dev());
    let o = LinearCrossEntropyOptions::default();
    for composed in [false, true] {
        let f = |x: Tensor<2>, w: Tensor<2>, b: Option<Tensor<1>>, t: Tensor<1, Int>, o: &_| {
            if composed {
                xent_burn::linear_cross_entropy_composed(x, w, b, t, o)
            } else {
                xent_burn::linear_cross_entropy(x, w, b, t, o)
            }
        };
        let e = f(x.clone(), floats([3, 5], &mut rng), None, t.clone(), &o).unwrap_err().to_string();
        assert!(e.contains("linear_weight") || e.contains("weight"), "{composed}: {e}");
        let e =
            f(x.clone(), floats([3, 4], &mut rng), Some(floats([2], &mut rng)), t.clone(), &o).unwrap_err().to_string();
        assert!(e.contains("linear_bias"), "{composed}: {e}");
        let bad = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 7, 2], [3]), &dev());
        let e = f(x.clone(), floats([3, 4], &mut rng), None, bad, &o).unwrap_err().to_string();
        assert!(e.contains('7'), "{composed}: {e}");
    }
}

#[test]
fn configs_forward_their_options() {
    let mut rng = Rng::new(13);
    let x = floats([3, 4], &mut rng);
    let w = floats([5, 4], &mut rng);
    let t = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 4, 2], [3]), &dev());
    let lce = xent_burn::LinearCrossEntropyLossConfig::new().with_label_smoothing(0.1).init();
    let o = LinearCrossEntropyOptions { label_smoothing: 0.1, ..Default::default() };
    let a = values(lce.forward(x.clone(), w.clone(), None, t.clone()).unwrap());
    assert_eq!(a, values(xent_burn::linear_cross_entropy(x.clone(), w.clone(), None, t.clone(), &o).unwrap()));
    assert_ne!(a, values(xent_burn::linear_cross_entropy(x, w, None, t.clone(), &Default::default()).unwrap()));
    let (z, t) = (floats([3, 5, 1], &mut rng), t.reshape([3, 1]));
    let focal = xent_burn::FocalLossConfig::new().with_gamma(3.0).init();
    let o = FocalOptions { gamma: 3.0, ..Default::default() };
    assert_eq!(values(focal.forward(z.clone(), t.clone()).unwrap()), values(xent_burn::focal_loss(z, t, &o).unwrap()));
}

/// Class indices `[2, 3, 3]` in `[0, classes)`, every fifth `ignore` if given.
fn spatial_labels(classes: usize, ignore: Option<i64>, rng: &mut Rng) -> Tensor<3, Int> {
    let v: Vec<i64> = (0..18)
        .map(|i| match ignore {
            Some(v) if i % 5 == 0 => v,
            _ => rng.below(classes) as i64,
        })
        .collect();
    Tensor::<3, Int>::from_data(TensorData::new(v, [2, 3, 3]), &dev())
}

#[test]
fn monai_losses_compose_as_the_kernels_compute() {
    let mut rng = Rng::new(17);
    let logits = scores([2, 4, 3, 3], &mut rng);
    // The identity activation takes probabilities (raw scores near a zero denominator would
    // test only the rounding of a cancellation).
    let probs: Vec<f64> = (0..72).map(|_| rng.uniform()).collect();
    let probs = Tensor::<4>::from_data(TensorData::new(probs, [2, 4, 3, 3]), (&dev(), DType::F64));
    let ignored = spatial_labels(4, Some(255), &mut rng);
    let plain = spatial_labels(4, None, &mut rng);
    // Class 3 absent: the generalized Dice's weight for it is the largest of its row.
    let absent = spatial_labels(3, None, &mut rng);
    let check = |what: String, k: (Vec<f64>, Vec<f64>), c: (Vec<f64>, Vec<f64>)| {
        assert_close(&format!("{what} loss"), &c.0, &k.0);
        assert_close(&format!("{what} grad"), &c.1, &k.1);
    };
    let acts = [Activation::Softmax, Activation::Sigmoid, Activation::Identity];
    for reduction in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        for (i, act) in acts.into_iter().enumerate() {
            let (bg, flag) = (i != 1, i == 2);
            let x = if act == Activation::Identity { &probs } else { &logits };
            for (t, ignore) in [(&ignored, Some(255)), (&plain, None)] {
                let weight = [None, Some(ClassWeight::Uniform(0.5)), Some(ClassWeight::PerClass(vec![1.0, 2.0, 0.5]))]
                    [i]
                    .clone()
                    .filter(|w| bg || matches!(w, ClassWeight::PerClass(_)));
                let weight = if bg {
                    weight.map(|w| match w {
                        ClassWeight::PerClass(_) => ClassWeight::PerClass(vec![1.0, 2.0, 0.5, 1.5]),
                        u => u,
                    })
                } else {
                    weight
                };
                let o = DiceOptions {
                    activation: act,
                    include_background: bg,
                    squared_pred: flag,
                    jaccard: !flag,
                    batch: flag,
                    weight,
                    ignore_index: ignore,
                    reduction,
                    ..Default::default()
                };
                let k = run(x, |x| xent_burn::dice_loss(x, t.clone(), &o));
                let c = run(x, |x| xent_burn::dice_loss_composed(x, t.clone(), &o));
                check(format!("dice {o:?}"), k, c);
                let o = TverskyOptions {
                    activation: act,
                    include_background: bg,
                    alpha: 0.3,
                    beta: 0.7,
                    batch: flag,
                    ignore_index: ignore,
                    reduction,
                    ..Default::default()
                };
                let k = run(x, |x| xent_burn::tversky_loss(x, t.clone(), &o));
                let c = run(x, |x| xent_burn::tversky_loss_composed(x, t.clone(), &o));
                check(format!("tversky {o:?}"), k, c);
                let alpha =
                    [FocalAlpha::None, FocalAlpha::Scalar(0.25), FocalAlpha::PerClass(vec![0.2, 0.3, 0.4])][i].clone();
                let alpha = match alpha {
                    FocalAlpha::PerClass(_) if bg => FocalAlpha::PerClass(vec![0.2, 0.3, 0.4, 0.1]),
                    a => a,
                };
                let o = FocalOptions {
                    activation: if i == 1 { Activation::Sigmoid } else { Activation::Softmax },
                    include_background: bg,
                    gamma: [2.0, 0.0, 1.5][i],
                    alpha,
                    weight: if bg { Some(ClassWeight::PerClass(vec![1.0, 2.0, 0.5, 1.5])) } else { None },
                    ignore_index: ignore,
                    reduction,
                };
                let k = run(x, |x| xent_burn::focal_loss(x, t.clone(), &o));
                let c = run(x, |x| xent_burn::focal_loss_composed(x, t.clone(), &o));
                check(format!("focal {o:?}"), k, c);
                if reduction == Reduction::None {
                    continue;
                }
                let o = DiceCeOptions {
                    activation: act,
                    include_background: bg,
                    weight: Some(vec![1.0, 2.0, 0.5, 1.5]),
                    lambda_dice: 0.7,
                    lambda_ce: 1.3,
                    label_smoothing: 0.1,
                    ignore_index: ignore,
                    reduction,
                    ..Default::default()
                };
                let k = run(x, |x| xent_burn::dice_ce(x, t.clone(), &o));
                let c = run(x, |x| xent_burn::dice_ce_composed(x, t.clone(), &o));
                check(format!("dice-ce {o:?}"), k, c);
                let o = DiceFocalOptions {
                    activation: act,
                    include_background: bg,
                    gamma: 1.5,
                    alpha: Some(0.3),
                    lambda_dice: 0.6,
                    lambda_focal: 1.4,
                    ignore_index: ignore,
                    reduction,
                    ..Default::default()
                };
                let k = run(x, |x| xent_burn::dice_focal(x, t.clone(), &o));
                let c = run(x, |x| xent_burn::dice_focal_composed(x, t.clone(), &o));
                check(format!("dice-focal {o:?}"), k, c);
            }
        }
        let x = &logits;
        for w_type in [WeightType::Square, WeightType::Simple, WeightType::Uniform] {
            for batch in [false, true] {
                let o = GeneralizedDiceOptions { w_type, batch, reduction, ..Default::default() };
                let k = run(x, |x| xent_burn::generalized_dice_loss(x, absent.clone(), &o));
                let c = run(x, |x| xent_burn::generalized_dice_loss_composed(x, absent.clone(), &o));
                check(format!("generalized dice {o:?}"), k, c);
            }
        }
    }
}
