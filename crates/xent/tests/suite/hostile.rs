//! Hostile input for the library: a table of bad calls, each with the exact error it must give.
//! (The CLI's table is in crates/xent-cli/tests/hostile.rs.)

use xent::weights::{AbsentClasses, ClassCounts, RunningFrequencies, Scheme};
use xent::*;

type Case = (&'static str, Box<dyn Fn() -> Result<()>>, fn(&Error) -> bool);

fn cases() -> Vec<Case> {
    let big = usize::MAX / 3;
    vec![
        ("data shorter than its shape", Box::new(|| View::new(&[0.0f32; 5], &[2, 3]).map(drop)), |e| {
            matches!(e, Error::DataLength { len: 5, expected: 6, .. })
        }),
        ("shape product overflows", Box::new(move || View::new(&[0.0f32; 1], &[big, 4]).map(drop)), |e| {
            matches!(e, Error::ShapeOverflow { .. })
        }),
        (
            "target out of range",
            Box::new(|| {
                let x = [0.0f32; 6];
                CrossEntropyLoss::new(Default::default())?
                    .forward(View::new(&x, &[2, 3])?, View::new(&[0u8, 3], &[2])?)
                    .map(drop)
            }),
            |e| matches!(e, Error::TargetOutOfRange { index: 1, value: 3, .. }),
        ),
        (
            "negative target",
            Box::new(|| {
                let x = [0.0f32; 6];
                NllLoss::new(Default::default())?
                    .forward(View::new(&x, &[2, 3])?, View::new(&[-1i32, 0], &[2])?)
                    .map(drop)
            }),
            |e| matches!(e, Error::TargetOutOfRange { index: 0, value: -1, .. }),
        ),
        (
            "u64 target beyond i64",
            Box::new(|| {
                let x = [0.0f32; 3];
                CrossEntropyLoss::new(Default::default())?
                    .forward(View::new(&x, &[1, 3])?, View::new(&[u64::MAX], &[1])?)
                    .map(drop)
            }),
            |e| matches!(e, Error::TargetOutOfRange { value, .. } if *value == u64::MAX as i128),
        ),
        (
            "target shape",
            Box::new(|| {
                let x = [0.0f64; 12];
                CrossEntropyLoss::new(Default::default())?
                    .forward(View::new(&x, &[2, 3, 2])?, View::new(&[0i64; 3], &[3])?)
                    .map(drop)
            }),
            |e| matches!(e, Error::ShapeMismatch { what: "target", .. }),
        ),
        (
            "zero-dimensional input",
            Box::new(|| {
                CrossEntropyLoss::<f32>::new(Default::default())?
                    .forward(View::new(&[1.0f32], &[])?, View::new(&[0i64], &[])?)
                    .map(drop)
            }),
            |e| matches!(e, Error::ShapeMismatch { what: "input", .. }),
        ),
        (
            "NaN class weight",
            Box::new(|| {
                CrossEntropyLoss::new(CrossEntropyOptions {
                    weight: Some(vec![1.0f32, f32::NAN]),
                    ..Default::default()
                })
                .map(drop)
            }),
            |e| matches!(e, Error::NonFinite { what: "weight", index: 1, .. }),
        ),
        (
            "weight of the wrong length",
            Box::new(|| {
                let x = [0.0f32; 6];
                CrossEntropyLoss::new(CrossEntropyOptions { weight: Some(vec![1.0f32; 2]), ..Default::default() })?
                    .forward(View::new(&x, &[2, 3])?, View::new(&[0u8, 1], &[2])?)
                    .map(drop)
            }),
            |e| matches!(e, Error::ShapeMismatch { what: "weight", .. }),
        ),
        (
            "label smoothing out of range",
            Box::new(|| {
                CrossEntropyLoss::<f32>::new(CrossEntropyOptions { label_smoothing: -0.1, ..Default::default() })
                    .map(drop)
            }),
            |e| matches!(e, Error::InvalidOption { name: "label_smoothing", .. }),
        ),
        (
            "bce input outside [0, 1]",
            Box::new(|| {
                BceLoss::new(BceOptions::default())?
                    .forward(View::new(&[0.5f32, 1.5], &[2])?, View::new(&[0.0, 1.0], &[2])?)
                    .map(drop)
            }),
            |e| matches!(e, Error::NotAProbability { index: 1, .. }),
        ),
        (
            "pos_weight does not broadcast",
            Box::new(|| {
                let o = BceWithLogitsOptions {
                    pos_weight: Some(WeightTensor::new(vec![1.0f32; 2], vec![2])?),
                    ..Default::default()
                };
                BceWithLogitsLoss::new(o)?
                    .forward(View::new(&[0.0f32; 6], &[2, 3])?, View::new(&[0.0; 6], &[2, 3])?)
                    .map(drop)
            }),
            |e| matches!(e, Error::Broadcast { what: "pos_weight", .. }),
        ),
        ("infinite pos_weight", Box::new(|| WeightTensor::new(vec![f32::INFINITY], vec![1]).map(drop)), |e| {
            matches!(e, Error::NonFinite { .. })
        }),
        (
            "negative focal gamma",
            Box::new(|| FocalLoss::<f32>::new(FocalOptions { gamma: -1.0, ..Default::default() }).map(drop)),
            |e| matches!(e, Error::InvalidOption { name: "gamma", .. }),
        ),
        (
            "negative dice weight",
            Box::new(|| {
                DiceLoss::new(DiceOptions {
                    weight: Some(ClassWeight::PerClass(vec![1.0f32, -1.0])),
                    ..Default::default()
                })
                .map(drop)
            }),
            |e| matches!(e, Error::InvalidOption { name: "weight", .. }),
        ),
        (
            "dice on a 1-d input",
            Box::new(|| {
                DiceLoss::<f32>::new(Default::default())?
                    .forward(View::new(&[0.0f32; 3], &[3])?, View::new(&[0u8; 1], &[])?)
                    .map(drop)
            }),
            |e| matches!(e, Error::ShapeMismatch { what: "input", .. }),
        ),
        (
            "focal on a 2-d input",
            Box::new(|| {
                FocalLoss::<f32>::new(Default::default())?
                    .forward(View::new(&[0.0f32; 6], &[2, 3])?, View::new(&[0u8; 2], &[2])?)
                    .map(drop)
            }),
            |e| matches!(e, Error::ShapeMismatch { what: "input", .. }),
        ),
        (
            "generalized dice of [N, C] without batch",
            Box::new(|| {
                GeneralizedDiceLoss::<f32>::new(Default::default())?
                    .forward(View::new(&[0.0f32; 6], &[2, 3])?, View::new(&[0u8; 2], &[2])?)
                    .map(drop)
            }),
            |e| matches!(e, Error::InvalidOption { name: "batch", .. }),
        ),
        (
            "cross-entropy with probability targets and ignore_index 255",
            Box::new(|| {
                let o = CrossEntropyOptions { ignore_index: 255, ..Default::default() };
                CrossEntropyLoss::<f32>::new(o)?
                    .forward(View::new(&[0.0f32; 3], &[1, 3])?, View::new(&[0.2f32, 0.3, 0.5], &[1, 3])?)
                    .map(drop)
            }),
            |e| matches!(e, Error::InvalidOption { name: "ignore_index", .. }),
        ),
        (
            "soft labels above 1",
            Box::new(|| {
                DiceLoss::<f32>::new(Default::default())?
                    .forward(View::new(&[0.0f32; 4], &[1, 2, 2])?, View::new(&[0.5f32, 1.5, 0.5, 0.0], &[1, 2, 2])?)
                    .map(drop)
            }),
            |e| matches!(e, Error::NotAProbability { index: 1, .. }),
        ),
        (
            "soft labels with ignore_index",
            Box::new(|| {
                TverskyLoss::<f32>::new(TverskyOptions { ignore_index: Some(255), ..Default::default() })?
                    .forward(View::new(&[0.0f32; 4], &[1, 2, 2])?, View::new(&[0.5f32; 4], &[1, 2, 2])?)
                    .map(drop)
            }),
            |e| matches!(e, Error::InvalidOption { name: "ignore_index", .. }),
        ),
        (
            "focal weight list on one included class",
            Box::new(|| {
                let o =
                    FocalOptions { include_background: false, weight: Some(vec![1.0f32].into()), ..Default::default() };
                FocalLoss::new(o)?
                    .forward(View::new(&[0.0f32; 4], &[1, 2, 2])?, View::new(&[0u8, 1], &[1, 2])?)
                    .map(drop)
            }),
            |e| matches!(e, Error::InvalidOption { name: "weight", .. }),
        ),
        (
            "dice+focal with a negative lambda",
            Box::new(|| {
                DiceFocalLoss::<f32>::new(DiceFocalOptions { lambda_focal: -1.0, ..Default::default() }).map(drop)
            }),
            |e| matches!(e, Error::InvalidOption { name: "lambda_focal", .. }),
        ),
        (
            "dice+ce with reduction none",
            Box::new(|| {
                DiceCeLoss::<f32>::new(DiceCeOptions { reduction: Reduction::None, ..Default::default() }).map(drop)
            }),
            |e| matches!(e, Error::InvalidOption { name: "reduction", .. }),
        ),
        (
            "dice+ce on one channel with ignore_index",
            Box::new(|| {
                DiceCeLoss::<f32>::new(DiceCeOptions { ignore_index: Some(255), ..Default::default() })?
                    .forward(View::new(&[0.0f32; 2], &[1, 1, 2])?, View::new(&[0u8, 1], &[1, 2])?)
                    .map(drop)
            }),
            |e| matches!(e, Error::InvalidOption { name: "ignore_index", .. }),
        ),
        (
            "grad_input of the wrong length",
            Box::new(|| {
                let x = [0.0f32; 6];
                CrossEntropyLoss::new(Default::default())?
                    .forward_backward(View::new(&x, &[2, 3])?, View::new(&[0u8, 1], &[2])?, &[1.0], &mut [0.0; 7])
                    .map(drop)
            }),
            |e| matches!(e, Error::ShapeMismatch { what: "grad_input", .. }),
        ),
        ("softmax dim out of range", Box::new(|| softmax(View::new(&[0.0f32; 6], &[2, 3])?, 2).map(drop)), |e| {
            matches!(e, Error::DimOutOfRange { dim: 2, ndim: 2 })
        }),
        ("counts: label out of range", Box::new(|| ClassCounts::new(2, Some(255)).add_image(&[0u8, 7])), |e| {
            matches!(e, Error::TargetOutOfRange { index: 1, value: 7, .. })
        }),
        (
            "counts: corrupt JSON",
            Box::new(|| ClassCounts::from_json("{\"num_classes\": 2, \"pixels\": [1]").map(drop)),
            |e| matches!(e, Error::Parse { .. }),
        ),
        (
            "counts: merge of other classes",
            Box::new(|| ClassCounts::new(2, None).merge(&ClassCounts::new(3, None))),
            |e| matches!(e, Error::Counts(_)),
        ),
        (
            "weights of no data",
            Box::new(|| ClassCounts::new(2, None).weights(Scheme::Balanced, AbsentClasses::Zero).map(drop)),
            |e| matches!(e, Error::Counts(_)),
        ),
        (
            "effective number beta 1",
            Box::new(|| {
                "effective_number".parse::<Scheme>().and_then(|s| s.with_parameters(None, Some(1.0))).map(drop)
            }),
            |e| matches!(e, Error::InvalidOption { name: "beta", .. }),
        ),
        ("running decay 1", Box::new(|| RunningFrequencies::new(2, 1.0).map(drop)), |e| {
            matches!(e, Error::InvalidOption { name: "decay", .. })
        }),
    ]
}

#[test]
fn every_bad_input_gives_its_error() {
    for (name, call, want) in cases() {
        match call() {
            Ok(()) => panic!("{name}: accepted"),
            Err(e) => {
                assert!(want(&e), "{name}: wrong error {e:?}");
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

/// Found by the `losses` fuzz target: the focal loss with `Reduction::None` on an input with no
/// classes-by-pixels (a zero dimension) split its output into chunks of length 0.
#[test]
fn fuzz_focal_none_with_a_zero_dimension() {
    for shape in [[2usize, 0, 3], [2, 3, 0]] {
        let t: Vec<i64> = vec![0; shape[0] * shape[2]];
        let l = FocalLoss::<f32>::new(FocalOptions { reduction: Reduction::None, ..Default::default() }).unwrap();
        let r = l.forward(View::new(&[] as &[f32], &shape).unwrap(), View::new(&t, &[shape[0], shape[2]]).unwrap());
        // Zero classes: every label is out of range; zero pixels: an empty result.
        match shape[1] {
            0 if !t.is_empty() => assert!(r.is_err()),
            _ => assert!(r.unwrap().loss.is_empty()),
        }
    }
}

/// Found by the `losses` fuzz target: the softmax focal loss on one class with a label of 1 and
/// a per-element upstream gradient indexed a channel that does not exist.
#[test]
fn fuzz_softmax_focal_one_class_label_one() {
    let l = FocalLoss::<f32>::new(FocalOptions {
        activation: Activation::Softmax,
        reduction: Reduction::None,
        ..Default::default()
    })
    .unwrap();
    let x = [0.3f32, -1.0, 2.0];
    let mut g = [9.0f32; 3];
    let out = l
        .forward_backward(
            View::new(&x, &[1, 1, 3]).unwrap(),
            View::new(&[1u8, 0, 1], &[1, 3]).unwrap(),
            &[1.0; 3],
            &mut g,
        )
        .unwrap();
    assert_eq!(out.loss, vec![0.0; 3]);
    assert_eq!(g, [0.0; 3]);
}

/// Zero classes with a run of positions longer than a tile (found by the losses fuzz target):
/// the positions still form blocks, and no kernel reads past the empty input.
#[test]
fn zero_classes_with_a_long_inner_run_is_a_value_or_an_error() {
    let shape = [2usize, 0, 300];
    let (x, y): (Vec<f32>, Vec<f32>) = (vec![], vec![]);
    let (xv, yv) = (View::new(&x, &shape).unwrap(), View::new(&y, &shape).unwrap());
    let ce = CrossEntropyLoss::<f32>::new(Default::default()).unwrap();
    let out = ce.forward_backward(xv, yv, &[1.0], &mut []).unwrap();
    assert_eq!(out.scalar(), Some(0.0), "no classes: every position's loss is an empty sum");
    assert!(softmax(xv, 1).unwrap().is_empty());
    softmax_backward_into(xv, yv, 1, &mut [] as &mut [f32]).unwrap();
    // Every label is out of range for zero classes unless ignored.
    let t = vec![-100i64; 600];
    let tv = View::new(&t, &[2, 300]).unwrap();
    assert!(ce.forward(xv, tv).unwrap().scalar().unwrap().is_nan(), "all ignored: 0 / 0");
    let dice = DiceLoss::<f32>::new(DiceOptions { ignore_index: Some(-100), ..Default::default() }).unwrap();
    let _ = dice.forward(xv, tv);
    assert!(FocalLoss::<f32>::new(Default::default())
        .unwrap()
        .forward(xv, View::new(&[0i64; 600], &[2, 300]).unwrap())
        .is_err());
}
