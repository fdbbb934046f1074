//! Behaviour at the edges: PyTorch's special cases, the options beyond PyTorch, and bad input
//! that must give an `Err` (never a panic).

use crate::common::rng::Rng;
use xent::*;

fn ce(opts: CrossEntropyOptions<f64>) -> CrossEntropyLoss<f64> {
    CrossEntropyLoss::new(opts).unwrap()
}

#[test]
fn cross_entropy_all_targets_ignored_is_nan_with_zero_gradient() {
    let x = [0.5, -1.0, 2.0, 0.1, 0.2, 0.3];
    let t = [-100i64, -100];
    let mut g = [1.0; 6];
    let out = ce(Default::default())
        .forward_backward(View::new(&x, &[2, 3]).unwrap(), View::new(&t, &[2]).unwrap(), &[1.0], &mut g)
        .unwrap();
    assert!(out.scalar().unwrap().is_nan());
    assert_eq!(out.denominator.value(), 0.0);
    assert_eq!(g, [0.0; 6]);
}

#[test]
fn empty_mean_zero_option_gives_zero_loss_and_zero_gradient() {
    let x = [0.5, -1.0, 2.0];
    let mut g = [1.0; 3];
    // The only target has class weight 0, so the denominator is 0 though nothing is ignored.
    let loss = ce(CrossEntropyOptions {
        weight: Some(vec![1.0, 0.0, 1.0]),
        label_smoothing: 0.1,
        empty_mean: EmptyMean::Zero,
        ..Default::default()
    });
    let out = loss
        .forward_backward(View::new(&x, &[1, 3]).unwrap(), View::new(&[1u8], &[1]).unwrap(), &[1.0], &mut g)
        .unwrap();
    assert_eq!(out.scalar(), Some(0.0));
    assert_eq!(g, [0.0; 3]);
}

#[test]
fn every_label_type_gives_the_same_loss() {
    let x: Vec<f32> = Rng::new(7).vec(4 * 5 * 6, 2.0).into_iter().map(|v| v as f32).collect();
    let labels = [0usize, 4, 2, 200, 1, 3, 200, 0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 200, 1, 1, 2, 3, 0, 4];
    let loss = CrossEntropyLoss::new(CrossEntropyOptions { ignore_index: 200, ..Default::default() }).unwrap();
    let input = View::new(&x, &[4, 5, 6]).unwrap();
    macro_rules! run {
        ($t:ty) => {{
            let t: Vec<$t> = labels.iter().map(|&v| v as $t).collect();
            loss.forward(input, View::new(&t, &[4, 6]).unwrap()).unwrap()
        }};
    }
    let want = run!(i64);
    assert_eq!(run!(u8), want);
    assert_eq!(run!(u16), want);
    assert_eq!(run!(u32), want);
    assert_eq!(run!(i32), want);
    assert_eq!(run!(u64), want);
}

/// Gradient accumulation over micro-batches, as documented on `LossOutput`, gives the mean of
/// the whole batch and its gradient, bit for bit.
#[test]
fn micro_batches_with_global_denominator_equal_the_full_batch_mean() {
    let mut rng = Rng::new(8);
    let (n, c, hw) = (6, 4, 10);
    let x = rng.vec(n * c * hw, 2.0);
    let t: Vec<i64> = (0..n * hw).map(|_| if rng.uniform() < 0.2 { -100 } else { rng.below(c) as i64 }).collect();
    let opts =
        CrossEntropyOptions { weight: Some(vec![0.3, 1.0, 2.0, 0.7]), label_smoothing: 0.1, ..Default::default() };
    let full = ce(opts.clone());
    let mut g_full = vec![0.0; x.len()];
    let want = full
        .forward_backward(View::new(&x, &[n, c, hw]).unwrap(), View::new(&t, &[n, hw]).unwrap(), &[1.0], &mut g_full)
        .unwrap();

    let sum = ce(CrossEntropyOptions { reduction: Reduction::Sum, ..opts });
    let halves = [(0, 2), (2, 6)];
    let shape = |m: usize| ([m, c, hw], [m, hw]);
    let mut den = ExactSum::default();
    for &(a, b) in &halves {
        den.merge(&sum.denominator(&shape(b - a).0, View::new(&t[a * hw..b * hw], &shape(b - a).1).unwrap()).unwrap());
    }
    let den = den.value();
    let mut total = ExactSum::default();
    let mut g = vec![0.0; x.len()];
    for (a, b) in halves {
        let (xs, ts) = shape(b - a);
        let out = sum
            .forward_backward(
                View::new(&x[a * c * hw..b * c * hw], &xs).unwrap(),
                View::new(&t[a * hw..b * hw], &ts).unwrap(),
                &[1.0 / den],
                &mut g[a * c * hw..b * c * hw],
            )
            .unwrap();
        total.merge(&out.weighted_sum);
    }
    assert_eq!(total.value() / den, want.scalar().unwrap());
    assert_eq!(g, g_full);
}

#[test]
fn logits_of_ten_thousand_give_exact_cross_entropy_and_gradient() {
    for (t, want, grad) in [(0i64, 0.0, [0.0, 0.0, 0.0]), (1, 2e4, [1.0, -1.0, 0.0]), (2, 1e4, [1.0, 0.0, -1.0])] {
        let x = [1e4f32, -1e4, 0.0];
        let mut g = [0.0f32; 3];
        let out = CrossEntropyLoss::new(Default::default())
            .unwrap()
            .forward_backward(View::new(&x, &[1, 3]).unwrap(), View::new(&[t], &[1]).unwrap(), &[1.0], &mut g)
            .unwrap();
        assert_eq!(out.scalar(), Some(want));
        assert_eq!(g, grad);
    }
}

#[test]
fn logits_of_ten_thousand_give_exact_bce_with_logits_and_gradient() {
    let x = [1e4f32, -1e4, 1e4, -1e4];
    let y = [0.0f32, 1.0, 1.0, 0.0];
    let mut g = [0.0f32; 4];
    let loss =
        BceWithLogitsLoss::new(BceWithLogitsOptions { reduction: Reduction::None, ..Default::default() }).unwrap();
    let out =
        loss.forward_backward(View::new(&x, &[4]).unwrap(), View::new(&y, &[4]).unwrap(), &[1.0; 4], &mut g).unwrap();
    assert_eq!(out.loss, [1e4, 1e4, 0.0, 0.0]);
    assert_eq!(g, [1.0, -1.0, 0.0, 0.0]);
}

#[test]
fn out_of_range_target_error_names_index_and_value() {
    let x = [0.0f32; 6];
    let err = CrossEntropyLoss::new(Default::default())
        .unwrap()
        .forward(View::new(&x, &[2, 3]).unwrap(), View::new(&[1i64, 3], &[2]).unwrap())
        .unwrap_err();
    assert_eq!(
        err,
        Error::TargetOutOfRange { what: "target", index: 1, value: 3, classes: 3, ignore_index: Some(-100) }
    );
    assert!(err.to_string().contains("value 3 at flat index 1"), "{err}");
}

#[test]
fn bad_options_and_data_are_errors() {
    assert!(matches!(
        CrossEntropyLoss::<f32>::new(CrossEntropyOptions { label_smoothing: 1.5, ..Default::default() }),
        Err(Error::InvalidOption { name: "label_smoothing", .. })
    ));
    assert!(matches!(
        CrossEntropyLoss::<f32>::new(CrossEntropyOptions { label_smoothing: f64::NAN, ..Default::default() }),
        Err(Error::InvalidOption { .. })
    ));
    assert!(matches!(
        NllLoss::new(NllOptions { weight: Some(vec![1.0f32, f32::NAN]), ..Default::default() }),
        Err(Error::NonFinite { what: "weight", index: 1, .. })
    ));
    assert!(matches!(WeightTensor::new(vec![f64::INFINITY], vec![1]), Err(Error::NonFinite { .. })));
    assert!(matches!(
        SigmoidFocalLoss::<f32>::new(SigmoidFocalOptions { gamma: -1.0, ..Default::default() }),
        Err(Error::InvalidOption { name: "gamma", .. })
    ));
    let bce = BceLoss::new(BceOptions::default()).unwrap();
    let err = bce.forward(View::new(&[0.5f32, f32::NAN], &[2]).unwrap(), View::new(&[0.0, 1.0], &[2]).unwrap());
    assert!(matches!(err, Err(Error::NotAProbability { index: 1, .. })));
}

#[test]
fn shapes_that_overflow_are_errors() {
    let big = usize::MAX / 2 + 1;
    assert!(matches!(View::new(&[0.0f32; 0], &[big, 4]), Err(Error::ShapeOverflow { .. })));
    // A zero dimension makes the whole empty, but the positions of the other dims still overflow.
    let shape = [big, 4, 0];
    let x = View::new(&[0.0f32; 0], &shape).unwrap();
    assert!(softmax(x, 2).is_err());
    assert!(matches!(softmax(x, 1), Ok(v) if v.is_empty()));
    // Empty, but with a huge batch: returns at once, without looping over the batch.
    let (xs, ts) = ([big, 3, 0], [big, 0]);
    let (input, target) = (View::new(&[0.0f32; 0], &xs).unwrap(), View::new(&[0u8; 0], &ts).unwrap());
    let out = CrossEntropyLoss::new(CrossEntropyOptions { reduction: Reduction::Sum, ..Default::default() }).unwrap();
    assert_eq!(out.forward(input, target).unwrap().scalar(), Some(0.0));
}

#[test]
fn wrong_buffer_lengths_are_errors() {
    let x = [0.0f64; 6];
    let (input, target) = (View::new(&x, &[2, 3]).unwrap(), View::new(&[0i64, 1], &[2]).unwrap());
    let loss = ce(Default::default());
    assert!(matches!(
        loss.forward_backward(input, target, &[1.0], &mut [0.0; 5]),
        Err(Error::ShapeMismatch { what: "grad_input", .. })
    ));
    assert!(matches!(
        loss.forward_backward(input, target, &[1.0, 1.0], &mut [0.0; 6]),
        Err(Error::ShapeMismatch { what: "grad_output", .. })
    ));
    let none = ce(CrossEntropyOptions { reduction: Reduction::None, ..Default::default() });
    assert!(none.forward_backward(input, target, &[1.0, 1.0], &mut [0.0; 6]).is_ok());
}

#[test]
fn zero_classes_and_empty_batches() {
    let loss = ce(CrossEntropyOptions { reduction: Reduction::Sum, ..Default::default() });
    // [2, 0]: every target must be ignored, since no class exists.
    let x: [f64; 0] = [];
    assert!(loss.forward(View::new(&x, &[2, 0]).unwrap(), View::new(&[-100i64, -100], &[2]).unwrap()).is_ok());
    assert!(loss.forward(View::new(&x, &[2, 0]).unwrap(), View::new(&[0i64, -100], &[2]).unwrap()).is_err());
    // [0, 3]: an empty batch sums to 0 and has a mean of NaN, as PyTorch.
    let out = loss.forward(View::new(&x, &[0, 3]).unwrap(), View::new(&[0i64; 0], &[0]).unwrap()).unwrap();
    assert_eq!(out.scalar(), Some(0.0));
    let mean =
        ce(Default::default()).forward(View::new(&x, &[0, 3]).unwrap(), View::new(&[0i64; 0], &[0]).unwrap()).unwrap();
    assert!(mean.scalar().unwrap().is_nan());
    assert!(ce(Default::default()).forward(View::new(&[1.0], &[]).unwrap(), View::new(&[0i64], &[]).unwrap()).is_err());
}

/// Random shapes, options and data (NaN, inf, huge, empty, out-of-range targets) through every
/// entry point: each call returns, `Ok` or `Err`, and never panics.
#[test]
fn no_input_makes_any_entry_point_panic() {
    let mut rng = Rng::new(9);
    let specials = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e30, -1e30, 0.0, 1.0, -0.0];
    for _ in 0..3000 {
        let ndim = rng.below(5);
        let shape: Vec<usize> = (0..ndim).map(|_| rng.below(4)).collect();
        let n = numel(&shape).unwrap();
        let val =
            |rng: &mut Rng| if rng.uniform() < 0.1 { specials[rng.below(specials.len())] } else { rng.normal(5.0) };
        let x: Vec<f64> = (0..n).map(|_| val(&mut rng)).collect();
        let y: Vec<f64> = (0..n).map(|_| val(&mut rng)).collect();
        let tshape: Vec<usize> = if rng.uniform() < 0.8 && ndim >= 2 {
            [&shape[..1], &shape[2..]].concat()
        } else {
            (0..rng.below(3)).map(|_| rng.below(3)).collect()
        };
        let tn = numel(&tshape).unwrap();
        let t: Vec<i64> = (0..tn).map(|_| rng.below(6) as i64 - 1).collect();
        let dim = rng.below(7) as i64 - 3;
        let red = [Reduction::None, Reduction::Mean, Reduction::Sum][rng.below(3)];
        let w: Option<Vec<f64>> = (rng.uniform() < 0.5).then(|| (0..rng.below(5)).map(|_| val(&mut rng)).collect());
        let go: Vec<f64> = (0..if rng.uniform() < 0.5 { 1 } else { tn.max(n) }).map(|_| val(&mut rng)).collect();
        let mut g = vec![0.0; if rng.uniform() < 0.9 { n } else { n + 1 }];
        let xv = View::new(&x, &shape).unwrap();
        let yv = View::new(&y, &shape).unwrap();
        let tv = View::new(&t, &tshape).unwrap();
        let _ = softmax(xv, dim);
        let _ = log_softmax_backward_into(xv, yv, dim, &mut g);
        let smoothing = [0.0, 0.1, -0.5, 2.0, f64::NAN][rng.below(5)];
        if let Ok(l) = CrossEntropyLoss::new(CrossEntropyOptions {
            weight: w.clone(),
            reduction: red,
            label_smoothing: smoothing,
            ignore_index: 1,
            ..Default::default()
        }) {
            let _ = l.forward(xv, tv);
            let _ = l.forward_backward(xv, tv, &go, &mut g);
            let _ = l.forward_backward(xv, yv, &go, &mut g);
        }
        if let Ok(l) = NllLoss::new(NllOptions { weight: w.clone(), reduction: red, ..Default::default() }) {
            let _ = l.forward_backward(xv, tv, &go, &mut g);
        }
        let wt = w.and_then(|w| {
            let len = w.len();
            WeightTensor::new(w, vec![len]).ok()
        });
        let _ = BceLoss::new(BceOptions { weight: wt.clone(), reduction: red, ..Default::default() })
            .unwrap()
            .forward_backward(xv, yv, &go, &mut g);
        let _ = BceWithLogitsLoss::new(BceWithLogitsOptions { pos_weight: wt, reduction: red, ..Default::default() })
            .unwrap()
            .forward_backward(xv, yv, &go, &mut g);
        if let Ok(l) = SigmoidFocalLoss::new(SigmoidFocalOptions {
            gamma: val(&mut rng).abs(),
            reduction: red,
            ..Default::default()
        }) {
            let _ = l.forward_backward(xv, yv, &go, &mut g);
        }
    }
}

#[cfg(feature = "ndarray")]
#[test]
fn ndarray_views_work_and_transposed_ones_are_refused() {
    let a = ndarray::array![[1.0f32, 2.0, 3.0]];
    let out = CrossEntropyLoss::new(Default::default())
        .unwrap()
        .forward(View::from_ndarray(&a).unwrap(), View::from_ndarray(&ndarray::array![2i64]).unwrap())
        .unwrap();
    assert!((out.scalar().unwrap() - 0.4076).abs() < 1e-4);
    let b = ndarray::array![[1.0f32, 2.0], [3.0, 4.0]];
    assert!(matches!(View::from_ndarray(&b.t()), Err(Error::NotContiguous { .. })));
}

/// Every named enum prints the name it parses from, and an unknown name lists the known ones.
#[test]
fn named_options_parse_what_they_print() {
    use xent::weights::{AbsentClasses, Scheme};
    for r in [Reduction::None, Reduction::Mean, Reduction::Sum] {
        assert_eq!(r.to_string().parse::<Reduction>(), Ok(r));
    }
    for a in [Activation::Softmax, Activation::Sigmoid, Activation::Identity] {
        assert_eq!(a.to_string().parse::<Activation>(), Ok(a));
    }
    for w in [WeightType::Square, WeightType::Simple, WeightType::Uniform] {
        assert_eq!(w.to_string().parse::<WeightType>(), Ok(w));
    }
    for a in [AbsentClasses::Zero, AbsentClasses::Largest, AbsentClasses::Error] {
        assert_eq!(a.to_string().parse::<AbsentClasses>(), Ok(a));
    }
    for s in ["inverse_frequency", "balanced", "median_frequency", "enet", "effective_number", "inverse_sqrt_frequency"]
    {
        assert_eq!(s.parse::<Scheme>().unwrap().to_string(), s);
    }
    let e = "avg".parse::<Reduction>().unwrap_err().to_string();
    assert!(e.contains("avg") && e.contains("none mean sum"), "{e}");
    // A constant given to a scheme that has none is refused, not ignored.
    assert!("balanced".parse::<Scheme>().unwrap().with_parameters(Some(1.1), None).is_err());
    assert_eq!("enet".parse::<Scheme>().unwrap().with_parameters(Some(1.1), None), Ok(Scheme::Enet { c: 1.1 }));
}

/// Options read from JSON (the `serde` feature): absent fields take the defaults, unknown
/// fields and bad values are errors, weight tensors are checked as `WeightTensor::new` checks.
#[test]
fn options_from_json_take_defaults_and_refuse_what_is_wrong() {
    let o: CrossEntropyOptions<f32> = serde_json::from_str(r#"{"reduction": "sum", "ignore_index": 255}"#).unwrap();
    assert_eq!(o, CrossEntropyOptions { reduction: Reduction::Sum, ignore_index: 255, ..Default::default() });
    let back: CrossEntropyOptions<f32> = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
    assert_eq!(back, o);
    assert!(serde_json::from_str::<CrossEntropyOptions<f32>>(r#"{"reductoin": "sum"}"#).is_err());
    let e = serde_json::from_str::<CrossEntropyOptions<f32>>(r#"{"reduction": "avg"}"#).unwrap_err();
    assert!(e.to_string().contains("none mean sum"), "{e}");
    let b: BceWithLogitsOptions<f64> =
        serde_json::from_str(r#"{"pos_weight": {"values": [2.0], "shape": [1]}}"#).unwrap();
    assert_eq!(b.pos_weight.unwrap().values(), &[2.0]);
    let bad = r#"{"pos_weight": {"values": [2.0, 1.0], "shape": [3]}}"#;
    assert!(serde_json::from_str::<BceWithLogitsOptions<f64>>(bad).is_err());
    let f: FocalOptions<f32> = serde_json::from_str(r#"{"activation": "softmax", "alpha": [0.2, 0.8]}"#).unwrap();
    assert_eq!((f.activation, f.alpha), (Activation::Softmax, FocalAlpha::PerClass(vec![0.2, 0.8])));
    let f: FocalOptions<f32> = serde_json::from_str(r#"{"alpha": 0.25}"#).unwrap();
    assert_eq!(f.alpha, FocalAlpha::Scalar(0.25));
}
