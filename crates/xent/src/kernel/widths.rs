//! Every vector width gives the same bits: each kernel run with the dispatch forced to the
//! baseline, AVX2 and AVX-512 (those this CPU has; the others are reported as skipped).

use super::simd::{at_each_level, from_columns_f32, to_columns_f32};
use super::tile::{from_columns, from_columns_of, to_columns, to_columns_of, SMALL, TILE};
use super::*;
use crate::float::Targets;
use crate::layout::{Broadcast, Layout};
use crate::par::for_blocks;

/// Runs `f` at every vector width this CPU has and checks that the results are equal.
fn same_bits<R: PartialEq + std::fmt::Debug>(what: &str, f: impl Fn() -> R) {
    let all = at_each_level(what, f);
    for r in &all[1..] {
        assert!(*r == all[0], "{what}: a vector width changed the bits");
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|v| v.to_bits()).collect()
}

/// Seeded values in `[0, 1)`.
fn uniform(seed: u64) -> impl FnMut() -> f32 {
    let mut rng = crate::testing::Rng::new(seed);
    move || rng.uniform() as f32
}

/// The AVX-512 scratch-tile copies move every value where the plain copies do, for every
/// class count they take and every row count of a tile.
#[test]
fn column_copies_match_the_plain_ones() {
    let wide = at_each_level("column copies", || to_columns_f32(&[0.0; 16 * 5], &mut [0.0; SMALL * TILE], 5));
    if !wide.iter().any(|&w| w) {
        println!("column copies: skipped: no AVX-512 on this CPU, the plain copies are the only ones");
    }
    for classes in 1..=SMALL {
        for n in [1, 15, 16, 17, 31, 32, 100, TILE] {
            let rows: Vec<f32> = (0..n * classes).map(|i| i as f32 + 0.5).collect();
            let (mut a, mut b) = (vec![-1.0f32; SMALL * TILE], vec![-1.0f32; SMALL * TILE]);
            let wide = to_columns_f32(&rows, &mut a, classes);
            to_columns_of(&rows, &mut b, classes);
            assert!(!wide || a == b, "to_columns: {classes} classes, {n} rows");
            let (mut ra, mut rb) = (vec![-1.0f32; n * classes], vec![-1.0f32; n * classes]);
            let wide = from_columns_f32(&b, &mut ra, classes);
            from_columns_of(&b, &mut rb, classes);
            assert!(!wide || ra == rb, "from_columns: {classes} classes, {n} rows");
            assert_eq!(rb, rows);
            // And the copies the kernels call (the two-class ones split into lanes).
            let mut c = vec![-1.0f32; SMALL * TILE];
            to_columns(&rows, &mut c, classes);
            assert!(c == b, "to_columns: {classes} classes, {n} rows");
            let mut rc = vec![-1.0f32; n * classes];
            from_columns(&b, &mut rc, classes);
            assert_eq!(rc, rows, "from_columns: {classes} classes, {n} rows");
        }
    }
}

/// The class-axis kernels (cross-entropy with indices and probabilities, softmax and its
/// backward, the focal loss), on strided positions, short rows through the scratch tile, two
/// classes and long rows.
#[test]
fn class_axis_kernels_give_the_same_bits_at_every_width() {
    let mut next = uniform(7);
    for shape in [[3usize, 7, 500], [300, 33, 1], [3, 2, 500], [300, 5, 1], [300, 2, 1], [30, 70, 1]] {
        let lay = Layout::classes_of(&shape).unwrap();
        let x: Vec<f32> = (0..shape.iter().product()).map(|_| next() * 20.0 - 10.0).collect();
        let t: Vec<i64> = (0..lay.positions())
            .map(|_| if next() < 0.1 { -1 } else { (next() * lay.classes as f32) as i64 % lay.classes as i64 })
            .collect();
        let w: Vec<f32> = (0..lay.classes).map(|_| next() + 0.5).collect();
        let y: Vec<f32> = (0..x.len()).map(|_| next()).collect();
        let p = IndexParams {
            classes: lay.classes,
            class_stride: lay.class_stride(),
            weight: Some(&w),
            weight_sum: w.iter().sum(),
            ignore_index: -1,
            // The two-class path runs without smoothing only.
            smoothing: if lay.classes == 2 { 0.0 } else { 0.1 },
        };
        let up = Upstream::All(0.37f32);
        same_bits(&format!("cross_entropy {shape:?}"), || {
            let (mut g, mut l) = (vec![0.0f32; x.len()], vec![0.0f32; lay.positions()]);
            let sums = for_blocks(lay, &mut g, &mut l, |b, grad, loss| {
                run(CrossEntropy(Index { x: &x, target: crate::float::Label::erase(&t[..]), p: &p, b, up, grad, loss }))
                    .to_bits()
            });
            (bits(&g), bits(&l), sums)
        });
        same_bits(&format!("cross_entropy probabilities {shape:?}"), || {
            let (mut g, mut l) = (vec![0.0f32; x.len()], vec![0.0f32; lay.positions()]);
            let sums = for_blocks(lay, &mut g, &mut l, |b, grad, loss| {
                run(CrossEntropyProbs { x: &x, y: &y, p: &p, b, up, grad, loss }).to_bits()
            });
            (bits(&g), bits(&l), sums)
        });
        let cs = lay.class_stride();
        for log in [false, true] {
            let softmax = |x: &[f32], g: &[f32]| {
                let mut out = vec![0.0f32; x.len()];
                for_blocks(lay, &mut out, &mut [] as &mut [f64], |b, o, _| {
                    run(Softmax { x, g, b, cs, classes: lay.classes, log, out: o.unwrap() });
                });
                out
            };
            same_bits(&format!("softmax {shape:?} log {log}"), || bits(&softmax(&x, &[])));
            // Its backward, from the forward's output and the logits as upstream.
            let yv = softmax(&x, &[]);
            same_bits(&format!("softmax backward {shape:?} log {log}"), || bits(&softmax(&yv, &x)));
        }
        // Focal loss, softmax and sigmoid: the gradient, the class-shaped loss and the sums.
        let first = usize::from(lay.classes > 2);
        let alpha: Vec<f32> = (first..lay.classes).map(|c| 0.2 + 0.1 * c as f32).collect();
        let per: Vec<f32> = (0..lay.outer).map(|i| 0.3 + i as f32 * 0.01).collect();
        for softmax in [true, false] {
            let o = FocalParams {
                classes: lay.classes,
                class_stride: lay.class_stride(),
                inner: lay.inner,
                first,
                softmax,
                gamma: if lay.classes.is_multiple_of(2) { 0.5 } else { 2.0 },
                alpha_pos: Some(&alpha),
                alpha_neg: None,
                weight: Some(&w[first..]),
                ignore_index: Some(-1),
            };
            same_bits(&format!("focal {shape:?} softmax {softmax}"), || {
                let (mut g, mut l) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
                let sums = for_blocks(lay, &mut g, &mut [] as &mut [f64], |b, grad, _| {
                    let mut sums = vec![0.0f64; b.len + 1];
                    let d = FocalData {
                        x: &x,
                        target: Targets::I64(&t),
                        o: &o,
                        b,
                        up: Some(Upstream::PerSample(&per[..])),
                    };
                    run(Focal { d, grad, loss: None, sums: &mut sums });
                    sums.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                });
                for_blocks(lay, &mut l, &mut [] as &mut [f64], |b, loss, _| {
                    let mut sums = vec![0.0f64; b.len + 1];
                    let d = FocalData { x: &x, target: Targets::I64(&t), o: &o, b, up: None };
                    run(Focal { d, grad: None, loss, sums: &mut sums });
                });
                (bits(&g), bits(&l), sums)
            });
        }
    }
}

/// Overlap sums and gradients (Dice and friends), softmax and sigmoid, strided positions.
#[test]
fn overlap_kernels_give_the_same_bits_at_every_width() {
    let mut next = uniform(8);
    let shape = [3usize, 7, 500];
    let lay = Layout::classes_of(&shape).unwrap();
    let x: Vec<f32> = (0..shape.iter().product()).map(|_| next() * 20.0 - 10.0).collect();
    let t: Vec<i64> = (0..lay.positions()).map(|_| if next() < 0.1 { -1 } else { (next() * 7.0) as i64 % 7 }).collect();
    let y: Vec<f32> = (0..x.len()).map(|_| next()).collect();
    for (activation, soft) in [(Activation::Softmax, false), (Activation::Sigmoid, false), (Activation::Softmax, true)]
    {
        let truth = if soft { Truth::Soft(&y) } else { Truth::Labels(&t) };
        let o = OverlapParams {
            classes: 7,
            class_stride: lay.class_stride(),
            inner: lay.inner,
            first: 1,
            activation,
            squared: true,
            ignore_index: if soft { None } else { Some(-1) },
            batch: false,
        };
        let ab: Vec<(f64, f64)> = (0..3 * 6).map(|i| (0.1 * i as f64, -0.05 * i as f64)).collect();
        same_bits(&format!("overlap {activation:?} soft {soft}"), || {
            let mut g = vec![0.0f32; x.len()];
            let sums = for_blocks(lay, &mut g, &mut [] as &mut [f64], |b, grad, _| {
                let (mut p, mut dp) = (vec![0.0f32; 7], vec![0.0f32; 7]);
                let mut sums = vec![0.0f64; 6 * 3];
                let g0 = o.group(b.p0);
                run(OverlapSums { x: &x, truth, o: &o, b, g0, p: &mut p, sums: &mut sums });
                let grad = grad.unwrap();
                run(OverlapBackward {
                    x: &x,
                    truth,
                    o: &o,
                    b,
                    ab: &ab,
                    p: &mut p,
                    dp: &mut dp,
                    grad,
                    accumulate: false,
                });
                sums.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            });
            (sums, bits(&g))
        });
    }
}

/// The element-wise kernels: BCE with logits (extreme logits, a constant pos_weight and a
/// per-column weight), BCE on probabilities, and the sigmoid focal loss with soft targets.
#[test]
fn elementwise_kernels_give_the_same_bits_at_every_width() {
    let mut next = uniform(9);
    let x: Vec<f32> = (0..3000).map(|i| if i % 97 == 0 { 1e4 } else { next() * 40.0 - 20.0 }).collect();
    let y: Vec<f32> = (0..3000).map(|_| f32::from(u8::from(next() < 0.3))).collect();
    let (wv, qv) = ((0..30).map(|_| next() + 0.5).collect::<Vec<f32>>(), vec![3.5f32]);
    let (wb, qb) = (Broadcast::new("w", &[30], &[100, 30]).unwrap(), Broadcast::new("q", &[1], &[100, 30]).unwrap());
    let up = Upstream::All(0.37f32);
    let elementwise = |x: &[f32], y: &[f32], kind: &dyn Fn(Elementwise<'_, f32>) -> f64| {
        let (mut g, mut l) = (vec![0.0f32; 3000], vec![0.0f32; 3000]);
        let s = kind(Elementwise { x, y, r: 0..3000, up, grad: &mut g, loss: &mut l });
        (bits(&g), bits(&l), s.to_bits())
    };
    let (w, q) = (Some((&wv[..], &wb)), Some((&qv[..], &qb)));
    same_bits("bce_with_logits", || elementwise(&x, &y, &|e| run(BceWithLogits { e, w, q })));
    let p: Vec<f32> = x.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect();
    same_bits("bce", || elementwise(&p, &y, &|e| run(Bce { e, w })));
    let y: Vec<f32> = (0..3000).map(|i| if i % 3 == 0 { next() } else { f32::from(u8::from(next() < 0.3)) }).collect();
    for (alpha, gamma) in [(0.25f32, 2.0f32), (-1.0, 0.5), (0.6, 0.0)] {
        same_bits(&format!("sigmoid_focal {alpha} {gamma}"), || {
            elementwise(&x, &y, &|e| run(SigmoidFocal { e, alpha, gamma }))
        });
    }
}
