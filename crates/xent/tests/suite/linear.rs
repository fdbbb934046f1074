//! `LinearCrossEntropy` over several chunks of rows against cross-entropy of the materialised
//! logits, the same bits on any thread count, and its argument errors. (The golden file's cases
//! fit in one chunk each.)

use crate::common::rng::Rng;
use xent::*;

/// N = 150 rows of D = 3 over a vocabulary of 50 000 (f64): 62 rows per chunk, so three chunks.
const N: usize = 150;
const D: usize = 3;
const C: usize = 50_000;

struct Case {
    x: Vec<f64>,
    w: Vec<f64>,
    b: Vec<f64>,
    t: Vec<i64>,
    class_weight: Vec<f64>,
}

fn case() -> Case {
    let mut r = Rng::new(7);
    let x = (0..N * D).map(|_| r.normal(1.0)).collect();
    let w = (0..C * D).map(|_| r.normal(1.0)).collect();
    let b = (0..C).map(|_| r.normal(0.1)).collect();
    let t = (0..N).map(|i| if i % 7 == 3 { -100 } else { r.below(C) as i64 }).collect();
    let class_weight = (0..C).map(|_| 0.5 + r.uniform()).collect();
    Case { x, w, b, t, class_weight }
}

fn options(c: &Case, reduction: Reduction) -> LinearCrossEntropyOptions<f64> {
    LinearCrossEntropyOptions {
        weight: Some(c.class_weight.clone()),
        reduction,
        label_smoothing: 0.1,
        ..Default::default()
    }
}

/// The loss and the three gradients by materialising the logits.
fn materialised(c: &Case, reduction: Reduction, go: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut z = vec![0.0; N * C];
    for n in 0..N {
        for k in 0..C {
            z[n * C + k] = c.b[k] + (0..D).map(|j| c.x[n * D + j] * c.w[k * D + j]).sum::<f64>();
        }
    }
    let ce = CrossEntropyLoss::new(CrossEntropyOptions {
        weight: Some(c.class_weight.clone()),
        reduction,
        label_smoothing: 0.1,
        ..Default::default()
    })
    .unwrap();
    let mut dz = vec![0.0; N * C];
    let out =
        ce.forward_backward(View::new(&z, &[N, C]).unwrap(), View::new(&c.t, &[N]).unwrap(), go, &mut dz).unwrap();
    let (mut dx, mut dw, mut db) = (vec![0.0; N * D], vec![0.0; C * D], vec![0.0; C]);
    for n in 0..N {
        for k in 0..C {
            let g = dz[n * C + k];
            db[k] += g;
            for j in 0..D {
                dx[n * D + j] += g * c.w[k * D + j];
                dw[k * D + j] += g * c.x[n * D + j];
            }
        }
    }
    (out.loss, dx, dw, db)
}

fn fused(c: &Case, reduction: Reduction, go: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let lce = LinearCrossEntropy::new(options(c, reduction)).unwrap();
    let linear = Linear {
        input: View::new(&c.x, &[N, D]).unwrap(),
        weight: View::new(&c.w, &[C, D]).unwrap(),
        bias: Some(View::new(&c.b, &[C]).unwrap()),
    };
    let (mut dx, mut dw, mut db) = (vec![0.0; N * D], vec![0.0; C * D], vec![0.0; C]);
    let grads = LinearGrads { grad_output: go, input: &mut dx, weight: &mut dw, bias: Some(&mut db) };
    let out = lce.evaluate(linear, View::new(&c.t, &[N]).unwrap(), Some(grads)).unwrap();
    (out.loss, dx, dw, db)
}

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-12 + 1e-10 * scale, "{what}[{i}] = {g:e}, want {w:e}");
    }
}

#[test]
fn several_chunks_equal_the_materialised_logits() {
    let c = case();
    let mut r = Rng::new(3);
    let each: Vec<f64> = (0..N).map(|_| r.normal(1.0)).collect();
    for (reduction, go) in [(Reduction::Mean, vec![1.5]), (Reduction::Sum, vec![0.25]), (Reduction::None, each)] {
        let want = materialised(&c, reduction, &go);
        let got = fused(&c, reduction, &go);
        assert_close("loss", &got.0, &want.0);
        assert_close("grad input", &got.1, &want.1);
        assert_close("grad weight", &got.2, &want.2);
        assert_close("grad bias", &got.3, &want.3);
    }
}

#[test]
fn same_bits_on_any_thread_count() {
    let c = case();
    let bits = |v: (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>)| {
        [v.0, v.1, v.2, v.3].concat().iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    };
    let runs: Vec<_> = [1, 2, 3]
        .iter()
        .map(|&n| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
            pool.install(|| bits(fused(&c, Reduction::Mean, &[1.0])))
        })
        .collect();
    assert_eq!(runs[0], runs[1], "1 and 2 threads differ");
    assert_eq!(runs[0], runs[2], "1 and 3 threads differ");
}

#[test]
fn argument_errors_name_the_argument() {
    let lce = LinearCrossEntropy::<f32>::new(Default::default()).unwrap();
    let (x, w, b) = ([0.5f32; 8], [0.25f32; 12], [0.0f32; 3]);
    let linear = Linear { input: View::new(&x, &[2, 4]).unwrap(), weight: View::new(&w, &[3, 4]).unwrap(), bias: None };
    let t = [0i64, 2];
    let t = View::new(&t, &[2]).unwrap();
    let (mut dx, mut dw, mut db) = (vec![0.0f32; 8], vec![0.0f32; 12], vec![0.0f32; 3]);
    let err = |g: LinearGrads<'_, f32>, l: Linear<'_, f32>| lce.evaluate(l, t, Some(g)).unwrap_err().to_string();
    let short = err(LinearGrads { grad_output: &[1.0], input: &mut dx[..7], weight: &mut dw, bias: None }, linear);
    assert!(short.contains("grad_input"), "{short}");
    let no_bias =
        err(LinearGrads { grad_output: &[1.0], input: &mut dx, weight: &mut dw, bias: Some(&mut db) }, linear);
    assert!(no_bias.contains("grad_bias"), "{no_bias}");
    let go = err(LinearGrads { grad_output: &[1.0, 2.0], input: &mut dx, weight: &mut dw, bias: None }, linear);
    assert!(go.contains("grad_output"), "{go}");
    let bad_bias = Linear { bias: Some(View::new(&b[..2], &[2]).unwrap()), ..linear };
    let e = lce.forward(bad_bias, t).unwrap_err().to_string();
    assert!(e.contains("linear_bias"), "{e}");
    let probs = [0.5f32; 6];
    let e = LinearCrossEntropy::new(LinearCrossEntropyOptions { ignore_index: Some(-100), ..Default::default() })
        .unwrap()
        .forward(linear, View::new(&probs, &[2, 3]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("ignore_index"), "{e}");
}

/// A weight of no classes with a bias, every target ignored: no logits, but rows (found by the
/// fuzzer: the bias fill cut the chunk into rows of 0 values and panicked). PyTorch 2.15 gives
/// mean NaN, sum 0, none `[0, 0]`, and a zero gradient of the input for all three.
#[test]
fn zero_classes_with_every_target_ignored_is_pytorchs() {
    let (x, w, b) = ([0.5f32; 8], [0.0f32; 0], [0.0f32; 0]);
    let linear = Linear {
        input: View::new(&x, &[2, 4]).unwrap(),
        weight: View::new(&w, &[0, 4]).unwrap(),
        bias: Some(View::new(&b, &[0]).unwrap()),
    };
    let t = View::new(&[-100i64, -100], &[2]).unwrap();
    for (reduction, go, want) in [
        (Reduction::Mean, vec![1.0], vec![f32::NAN]),
        (Reduction::Sum, vec![1.0], vec![0.0]),
        (Reduction::None, vec![1.0, 1.0], vec![0.0, 0.0]),
    ] {
        let lce = LinearCrossEntropy::new(LinearCrossEntropyOptions { reduction, ..Default::default() }).unwrap();
        let (mut dx, mut dw, mut db) = ([f32::NAN; 8], [0.0f32; 0], [0.0f32; 0]);
        let grads = LinearGrads { grad_output: &go, input: &mut dx, weight: &mut dw, bias: Some(&mut db) };
        let out = lce.evaluate(linear, t, Some(grads)).unwrap();
        let same = out.loss.iter().zip(&want).all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
        assert!(same && out.loss.len() == want.len(), "{reduction:?}: {:?}, want {want:?}", out.loss);
        assert!(dx.iter().all(|&v| v == 0.0), "{reduction:?}: {dx:?}");
    }
}
