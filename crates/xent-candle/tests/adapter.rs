//! The candle adapter against the golden vectors (values and gradients through candle's
//! autograd), its composed path against its kernel path, and a training-loop smoke test.

use candle_core::{DType, Device, Tensor, Var};
use serde_json::Value;
use xent::*;

fn num(v: &Value) -> f64 {
    match v.as_str() {
        Some("nan") => f64::NAN,
        Some("inf") => f64::INFINITY,
        Some("-inf") => f64::NEG_INFINITY,
        _ => v.as_f64().unwrap(),
    }
}

fn tensor(v: &Value, dev: &Device) -> Tensor {
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data = v["data"].as_array().unwrap();
    match v["dtype"].as_str().unwrap() {
        "i64" => Tensor::from_vec(data.iter().map(|d| d.as_i64().unwrap()).collect::<Vec<_>>(), shape, dev).unwrap(),
        "f32" => Tensor::from_vec(data.iter().map(|d| num(d) as f32).collect::<Vec<_>>(), shape, dev).unwrap(),
        _ => Tensor::from_vec(data.iter().map(num).collect::<Vec<_>>(), shape, dev).unwrap(),
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
}

fn close(got: &[f64], want: &[f64], f32: bool) -> bool {
    let (rtol, atol) = if f32 { (1e-5, 1e-6) } else { (1e-10, 1e-12) };
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= atol + rtol * w.abs())
}

type Run = fn(&Tensor, &Tensor, &Value) -> candle_core::Result<Tensor>;

fn ce(composed: bool) -> Run {
    fn opts(o: &Value, w: Option<Vec<f64>>) -> CrossEntropyOptions<f64> {
        CrossEntropyOptions {
            weight: w,
            ignore_index: o.get("ignore_index").map_or(-100, |v| v.as_i64().unwrap()),
            reduction: o.get("reduction").and_then(|v| v.as_str()).unwrap_or("mean").parse().unwrap(),
            label_smoothing: o.get("label_smoothing").map_or(0.0, num),
            ..Default::default()
        }
    }
    if composed {
        |x, t, c| xent_candle::cross_entropy_composed(x, t, &opts(&c["options"], weight(c)))
    } else {
        |x, t, c| xent_candle::cross_entropy(x, t, &opts(&c["options"], weight(c)))
    }
}

fn weight(c: &Value) -> Option<Vec<f64>> {
    c["inputs"].get("weight").map(|w| w["data"].as_array().unwrap().iter().map(num).collect())
}

fn bcel(composed: bool) -> Run {
    fn opts(c: &Value) -> BceWithLogitsOptions<f64> {
        let t = |k: &str| {
            c["inputs"].get(k).map(|w| {
                let shape = w["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
                xent::WeightTensor::new(w["data"].as_array().unwrap().iter().map(num).collect(), shape).unwrap()
            })
        };
        BceWithLogitsOptions {
            weight: t("weight"),
            pos_weight: t("pos_weight"),
            reduction: c["options"].get("reduction").and_then(|v| v.as_str()).unwrap_or("mean").parse().unwrap(),
            ..Default::default()
        }
    }
    if composed {
        |x, t, c| xent_candle::binary_cross_entropy_with_logits_composed(x, t, &opts(c))
    } else {
        |x, t, c| xent_candle::binary_cross_entropy_with_logits(x, t, &opts(c))
    }
}

fn dice(x: &Tensor, t: &Tensor, c: &Value) -> candle_core::Result<Tensor> {
    let o = &c["options"];
    let flag = |k: &str, d: bool| o.get(k).map_or(d, |v| v.as_bool().unwrap());
    let opts = DiceOptions {
        activation: if o["activation"] == "sigmoid" { Activation::Sigmoid } else { Activation::Softmax },
        include_background: flag("include_background", true),
        squared_pred: flag("squared_pred", false),
        jaccard: flag("jaccard", false),
        batch: flag("batch", false),
        smooth_nr: o.get("smooth_nr").map_or(1e-5, num),
        smooth_dr: o.get("smooth_dr").map_or(1e-5, num),
        weight: o.get("weight").map(|w| match w.as_array() {
            Some(w) => ClassWeight::PerClass(w.iter().map(|v| num(v) as f32 as f64).collect()),
            None => ClassWeight::Uniform(num(w)),
        }),
        ignore_index: None,
        reduction: o["reduction"].as_str().unwrap().parse::<Reduction>().unwrap(),
    };
    xent_candle::dice_loss(x, t, &opts)
}

/// Runs every non-error case of `file` through `run`: the output, and the gradient of
/// `sum(output * grad_output)` through candle's backward pass.
fn golden(file: &str, run: Run) -> usize {
    let dev = Device::Cpu;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden").join(file);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut n = 0;
    for c in doc["cases"].as_array().unwrap() {
        if c.get("error").is_some() {
            continue;
        }
        let f32 = c["dtype"] == "f32";
        let x = Var::from_tensor(&tensor(&c["inputs"]["input"], &dev)).unwrap();
        let t = tensor(&c["inputs"]["target"], &dev);
        let out = run(x.as_tensor(), &t, c).unwrap_or_else(|e| panic!("{}: {e}", c["name"]));
        assert!(
            close(&values(&out), &values(&tensor(&c["output"], &dev)), f32),
            "{} output {:?}",
            c["name"],
            values(&out)
        );
        if let Some(go) = c.get("grad_output") {
            let go = tensor(go, &dev);
            let grads = (out * go).unwrap().sum_all().unwrap().backward().unwrap();
            let g = grads.get(x.as_tensor()).expect("a gradient");
            assert!(close(&values(g), &values(&tensor(&c["grad"]["input"], &dev)), f32), "{} grad", c["name"]);
        }
        n += 1;
    }
    n
}

#[test]
fn kernel_path_matches_the_golden_vectors() {
    assert!(golden("cross_entropy.json", ce(false)) > 200);
    assert!(golden("binary_cross_entropy_with_logits.json", bcel(false)) > 20);
    assert!(golden("dice_loss.json", dice) > 20);
}

#[test]
fn composed_path_matches_the_golden_vectors() {
    // Probability targets and unsupported options fall back to the kernels inside.
    assert!(golden("cross_entropy.json", ce(true)) > 200);
    assert!(golden("binary_cross_entropy_with_logits.json", bcel(true)) > 20);
}

#[test]
fn half_precision_is_computed_in_f32() {
    let dev = Device::Cpu;
    let x = Tensor::new(&[[1.0f32, 2.0, 3.0]], &dev).unwrap();
    let t = Tensor::new(&[2u32], &dev).unwrap();
    for dt in [DType::F16, DType::BF16] {
        // An f32 loss, a gradient in the input's type.
        let xv = Var::from_tensor(&x.to_dtype(dt).unwrap()).unwrap();
        let l = xent_candle::cross_entropy(xv.as_tensor(), &t, &Default::default()).unwrap();
        assert_eq!(l.dtype(), DType::F32);
        assert!((l.to_scalar::<f32>().unwrap() - 0.4076).abs() < 1e-4);
        let g = l.backward().unwrap();
        assert_eq!(g.get(xv.as_tensor()).unwrap().dtype(), dt);
        let d = xent_candle::dice_loss(xv.as_tensor(), &t, &Default::default()).unwrap();
        assert_eq!(d.dtype(), DType::F32);
        assert_eq!(d.backward().unwrap().get(xv.as_tensor()).unwrap().dtype(), dt);
        // MONAI's focal loss and DiceFocal: the f32 loss of the same values, and its gradient
        // rounded once.
        let x4 = xv.as_tensor().reshape((1, 3, 1, 1)).unwrap();
        let wide = Var::from_tensor(&x4.to_dtype(DType::F32).unwrap()).unwrap();
        let t3 = t.reshape((1, 1, 1)).unwrap();
        let focal = |x: &Tensor| xent_candle::focal_loss(x, &t3, &Default::default()).unwrap();
        let dice_focal = |x: &Tensor| xent_candle::dice_focal(x, &t3, &Default::default()).unwrap();
        for f in [&focal as &dyn Fn(&Tensor) -> Tensor, &dice_focal] {
            let (lh, lf) = (f(&x4), f(wide.as_tensor()));
            assert_eq!(lh.dtype(), DType::F32);
            assert_eq!(lh.to_scalar::<f32>().unwrap(), lf.to_scalar::<f32>().unwrap());
            let gh = lh.backward().unwrap().get(xv.as_tensor()).unwrap().clone();
            let gf = lf.backward().unwrap().get(wide.as_tensor()).unwrap().to_dtype(dt).unwrap();
            assert_eq!(gh.dtype(), dt);
            let bits = |g: &Tensor| g.flatten_all().unwrap().to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(bits(&gh), bits(&gf));
        }
        let s = xent_candle::softmax(xv.as_tensor(), -1).unwrap();
        assert_eq!(s.dtype(), DType::F32);
        let g = s.sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(xv.as_tensor()).unwrap().dtype(), dt);
    }
}

#[test]
fn bad_targets_are_errors_not_panics() {
    let dev = Device::Cpu;
    let x = Tensor::new(&[[1.0f32, 2.0, 3.0]], &dev).unwrap();
    let err = xent_candle::cross_entropy(&x, &Tensor::new(&[7i64], &dev).unwrap(), &Default::default()).unwrap_err();
    assert!(err.to_string().contains("value 7"), "{err}");
    // Float targets are soft labels: in [0, 1], the input's shape.
    let y = Tensor::new(&[[1.0f32, 0.0, 2.0]], &dev).unwrap();
    let err = xent_candle::dice_loss(&x, &y, &Default::default()).unwrap_err();
    assert!(err.to_string().contains("[0, 1]"), "{err}");
    let y = Tensor::new(&[[1.0f32, 0.0]], &dev).unwrap();
    assert!(xent_candle::tversky_loss(&x, &y, &Default::default()).is_err());
}

/// A reduced loss on a leaf computes its gradient in the forward pass: `backward()` hands over
/// the core's gradient bit for bit, a second `backward()` gives it again, another upstream
/// gradient scales it, and the loss itself is the forward-only one's.
#[test]
fn the_fused_forward_gives_the_core_gradient() {
    let dev = Device::Cpu;
    let mut rng = xent::testing::Rng::new(5);
    let shape = [3usize, 5, 4, 7];
    let xs: Vec<f32> = (0..shape.iter().product()).map(|_| rng.normal(3.0) as f32).collect();
    let ts: Vec<u8> = (0..3 * 4 * 7).map(|i| if i % 9 == 0 { 255 } else { (i * 7 % 5) as u8 }).collect();
    let weight = vec![0.5, 2.0, 1.0, 0.25, 3.0];
    let opts = CrossEntropyOptions { weight: Some(weight.clone()), ignore_index: 255, ..Default::default() };
    let core = CrossEntropyLoss::<f32>::new(CrossEntropyOptions {
        weight: Some(weight.iter().map(|&w| w as f32).collect()),
        ignore_index: 255,
        ..Default::default()
    })
    .unwrap();
    let mut want = vec![0f32; xs.len()];
    let out = core
        .forward_backward(View::new(&xs, &shape).unwrap(), View::new(&ts, &[3, 4, 7]).unwrap(), &[1.0], &mut want)
        .unwrap();
    let x = Var::from_tensor(&Tensor::from_vec(xs.clone(), &shape[..], &dev).unwrap()).unwrap();
    let t = Tensor::from_vec(ts.clone(), &[3usize, 4, 7][..], &dev).unwrap();
    let loss = xent_candle::cross_entropy(x.as_tensor(), &t, &opts).unwrap();
    let plain = xent_candle::cross_entropy(&x.as_tensor().detach(), &t, &opts).unwrap();
    assert_eq!(loss.to_scalar::<f32>().unwrap().to_bits(), out.loss[0].to_bits());
    assert_eq!(plain.to_scalar::<f32>().unwrap().to_bits(), out.loss[0].to_bits());
    let bits =
        |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let want_bits: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
    for _ in 0..2 {
        let g = loss.backward().unwrap();
        assert_eq!(bits(g.get(x.as_tensor()).unwrap()), want_bits);
    }
    // Another upstream gradient: the core's gradient for it.
    let mut scaled = vec![0f32; xs.len()];
    core.forward_backward(View::new(&xs, &shape).unwrap(), View::new(&ts, &[3, 4, 7]).unwrap(), &[0.3], &mut scaled)
        .unwrap();
    let g = (&loss * 0.3).unwrap().backward().unwrap();
    assert_eq!(bits(g.get(x.as_tensor()).unwrap()), scaled.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
}

/// A linear classifier trained with weighted cross-entropy: the loss falls.
#[test]
fn training_loop_smoke_test() {
    let dev = Device::Cpu;
    let n = 64;
    let xs: Vec<f32> = (0..n * 2).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let x = Tensor::from_vec(xs.clone(), (n, 2), &dev).unwrap();
    let t = Tensor::from_vec((0..n).map(|i| u8::from(xs[2 * i] + xs[2 * i + 1] > 0.5)).collect::<Vec<_>>(), n, &dev)
        .unwrap();
    let w = Var::zeros((2, 2), DType::F32, &dev).unwrap();
    let b = Var::zeros(2, DType::F32, &dev).unwrap();
    let opts = CrossEntropyOptions { weight: Some(vec![0.3, 1.0]), ..Default::default() };
    let mut losses = Vec::new();
    for _ in 0..100 {
        let logits = x.matmul(w.as_tensor()).unwrap().broadcast_add(b.as_tensor()).unwrap();
        let loss = xent_candle::cross_entropy(&logits, &t, &opts).unwrap();
        losses.push(loss.to_scalar::<f32>().unwrap());
        let g = loss.backward().unwrap();
        for v in [&w, &b] {
            v.set(&(v.as_tensor() - (g.get(v.as_tensor()).unwrap() * 1.0).unwrap()).unwrap()).unwrap();
        }
    }
    assert!(losses[99] < 0.5 * losses[0], "{} -> {}", losses[0], losses[99]);
}

type Both = (fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>, fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>);

/// Every loss's composition of candle ops against its kernel, values and gradients, on random
/// f64 inputs (with ignored pixels, weights, no background...).
#[test]
fn every_loss_composed_matches_its_kernel() {
    let dev = Device::Cpu;
    let mut rng = xent::testing::Rng::new(11);
    let mut next = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let shape = (2usize, 3usize, 4usize, 5usize);
    let n = shape.0 * shape.1 * shape.2 * shape.3;
    let x = Tensor::from_vec((0..n).map(|_| next() * 6.0 - 3.0).collect::<Vec<f64>>(), shape, &dev).unwrap();
    let probs = Tensor::from_vec((0..n).map(|_| 0.05 + 0.9 * next()).collect::<Vec<f64>>(), shape, &dev).unwrap();
    let labels: Vec<i64> = (0..n / 3).map(|_| if next() < 0.15 { 255 } else { (next() * 3.0) as i64 % 3 }).collect();
    let t = Tensor::from_vec(labels, (2, 4, 5), &dev).unwrap();
    let y =
        Tensor::from_vec((0..n).map(|_| f64::from(u8::from(next() < 0.3))).collect::<Vec<f64>>(), shape, &dev).unwrap();
    type F = fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>;
    macro_rules! both {
        ($k:path, $c:path, $o:expr) => {{
            let k: F = |a, b| $k(a, b, &$o);
            let c: F = |a, b| $c(a, b, &$o);
            (k, c)
        }};
    }
    use xent_candle::*;
    let cases: Vec<(&str, Both, &Tensor, &Tensor)> = vec![
        (
            "ce",
            both!(
                cross_entropy,
                cross_entropy_composed,
                CrossEntropyOptions {
                    weight: Some(vec![0.5, 1.0, 2.0]),
                    ignore_index: 255,
                    label_smoothing: 0.1,
                    ..Default::default()
                }
            ),
            &x,
            &t,
        ),
        (
            "nll",
            both!(
                nll_loss,
                nll_loss_composed,
                NllOptions { ignore_index: 255, reduction: Reduction::Sum, ..Default::default() }
            ),
            &x,
            &t,
        ),
        ("bce", both!(binary_cross_entropy, binary_cross_entropy_composed, BceOptions::default()), &probs, &y),
        (
            "sfocal",
            both!(
                sigmoid_focal_loss,
                sigmoid_focal_loss_composed,
                SigmoidFocalOptions { reduction: Reduction::Mean, ..Default::default() }
            ),
            &x,
            &y,
        ),
        (
            "dice",
            both!(
                dice_loss,
                dice_loss_composed,
                DiceOptions {
                    ignore_index: Some(255),
                    include_background: false,
                    jaccard: true,
                    weight: Some(vec![2.0, 0.5].into()),
                    ..Default::default()
                }
            ),
            &x,
            &t,
        ),
        (
            "dice_none_batch",
            both!(
                dice_loss,
                dice_loss_composed,
                DiceOptions {
                    batch: true,
                    weight: Some(0.5.into()),
                    ignore_index: Some(255),
                    reduction: Reduction::None,
                    ..Default::default()
                }
            ),
            &x,
            &t,
        ),
        (
            "gdice_none",
            both!(
                generalized_dice_loss,
                generalized_dice_loss_composed,
                GeneralizedDiceOptions { ignore_index: Some(255), reduction: Reduction::None, ..Default::default() }
            ),
            &x,
            &t,
        ),
        (
            "dice_sq",
            both!(
                dice_loss,
                dice_loss_composed,
                DiceOptions {
                    ignore_index: Some(255),
                    squared_pred: true,
                    batch: true,
                    activation: Activation::Sigmoid,
                    reduction: Reduction::Sum,
                    ..Default::default()
                }
            ),
            &x,
            &t,
        ),
        (
            "gdice",
            both!(
                generalized_dice_loss,
                generalized_dice_loss_composed,
                GeneralizedDiceOptions { ignore_index: Some(255), w_type: WeightType::Simple, ..Default::default() }
            ),
            &x,
            &t,
        ),
        (
            "tversky",
            both!(
                tversky_loss,
                tversky_loss_composed,
                TverskyOptions { ignore_index: Some(255), alpha: 0.3, beta: 0.7, batch: true, ..Default::default() }
            ),
            &x,
            &t,
        ),
        (
            "focal_soft",
            both!(
                focal_loss,
                focal_loss_composed,
                FocalOptions {
                    ignore_index: Some(255),
                    activation: xent::Activation::Softmax,
                    alpha: FocalAlpha::Scalar(0.3),
                    weight: Some(vec![1.0, 2.0, 0.5].into()),
                    reduction: Reduction::Sum,
                    ..Default::default()
                }
            ),
            &x,
            &t,
        ),
        (
            "focal_sig",
            both!(
                focal_loss,
                focal_loss_composed,
                FocalOptions {
                    ignore_index: Some(255),
                    include_background: false,
                    alpha: FocalAlpha::PerClass(vec![0.2, 0.7]),
                    gamma: 1.5,
                    ..Default::default()
                }
            ),
            &x,
            &t,
        ),
        (
            "dice_ce",
            both!(
                dice_ce,
                dice_ce_composed,
                DiceCeOptions {
                    lambda_dice: 0.6,
                    ignore_index: Some(255),
                    weight: Some(vec![0.5, 1.0, 2.0]),
                    label_smoothing: 0.1,
                    ..Default::default()
                }
            ),
            &x,
            &t,
        ),
        (
            "dice_focal",
            both!(
                dice_focal,
                dice_focal_composed,
                DiceFocalOptions {
                    lambda_focal: 0.7,
                    alpha: Some(0.3),
                    weight: Some(1.5.into()),
                    ignore_index: Some(255),
                    ..Default::default()
                }
            ),
            &x,
            &t,
        ),
    ];
    for (name, (kernel, composed), input, target) in cases {
        let run = |f: fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>| {
            let v = Var::from_tensor(input).unwrap();
            let out = f(v.as_tensor(), target).unwrap_or_else(|e| panic!("{name}: {e}"));
            let g = out.sum_all().unwrap().backward().unwrap();
            (values(&out), values(g.get(v.as_tensor()).unwrap()))
        };
        let ((ka, kg), (ca, cg)) = (run(kernel), run(composed));
        let near = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| (a - b).abs() <= 1e-12 + 1e-10 * b.abs())
        };
        assert!(near(&ca, &ka), "{name}: {ca:?} vs {ka:?}");
        assert!(near(&cg, &kg), "{name} gradient");
    }
}

/// Every case of `linear_cross_entropy.json` through the composition (the path off the CPU):
/// the loss and the gradients of input, weight and bias; the error cases are errors.
#[test]
fn linear_composed_path_matches_the_golden_vectors() {
    let dev = Device::Cpu;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/linear_cross_entropy.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut n = 0;
    for c in doc["cases"].as_array().unwrap() {
        let f32 = c["dtype"] == "f32";
        let var = |k: &str| c["inputs"].get(k).map(|t| Var::from_tensor(&tensor(t, &dev)).unwrap());
        let (x, w, b) = (var("input").unwrap(), var("linear_weight").unwrap(), var("linear_bias"));
        let t = tensor(&c["inputs"]["target"], &dev);
        let o = &c["options"];
        let opts = LinearCrossEntropyOptions {
            weight: weight(c),
            ignore_index: o.get("ignore_index").map(|v| v.as_i64().unwrap()),
            reduction: o.get("reduction").and_then(|v| v.as_str()).unwrap_or("mean").parse().unwrap(),
            label_smoothing: o.get("label_smoothing").map_or(0.0, num),
            ..Default::default()
        };
        let out = xent_candle::linear_cross_entropy_composed(
            x.as_tensor(),
            w.as_tensor(),
            b.as_ref().map(Var::as_tensor),
            &t,
            &opts,
        );
        if c.get("error").is_some() {
            assert!(out.is_err(), "{}: no error", c["name"]);
            continue;
        }
        let out = out.unwrap_or_else(|e| panic!("{}: {e}", c["name"]));
        assert!(close(&values(&out), &values(&tensor(&c["output"], &dev)), f32), "{} output", c["name"]);
        let go = tensor(&c["grad_output"], &dev);
        let grads = (out * go).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, v) in [("input", Some(&x)), ("linear_weight", Some(&w)), ("linear_bias", b.as_ref())] {
            let Some(v) = v else { continue };
            let got = grads.get(v.as_tensor()).map_or_else(|| vec![0.0; v.elem_count()], values);
            let want = values(&tensor(&c["grad"][name], &dev));
            assert!(close(&got, &want, f32), "{} grad of {name}", c["name"]);
        }
        n += 1;
    }
    assert!(n > 70, "{n} cases");
}
