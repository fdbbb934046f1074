//! Runtime dispatch to wider vector units. The kernels are plain safe Rust; here they are
//! compiled again inside functions that enable AVX2 + FMA or AVX-512, and the widest one the
//! CPU has is called. The maths and its order are the same in every copy (Rust never fuses a
//! multiply and an add on its own), so the bits do not depend on the copy that runs.
//!
//! The one place with intrinsics is here too: the AVX-512 register transposes of the
//! scratch-tile copies ([`to_columns_f32`]), which only move values; every load and store goes
//! through a bounds-checked slice.
#![allow(unsafe_code)] // reason: calling `#[target_feature]` functions after detecting the feature, and AVX-512 loads and stores

use crate::float::{Float, Label};
use crate::kernel::binary::{self, Bcast};
use crate::kernel::cross_entropy::{self, IndexParams};
use crate::kernel::focal::{self, FocalParams, FocalUp};
use crate::kernel::overlap::{self, OverlapParams};
use crate::kernel::softmax;
use crate::par::{Block, ClassOut};
use crate::reduction::Upstream;
use crate::weights::counts;

/// The widest vector unit of this CPU, detected once.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

fn level() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") {
                return Level::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Level::Avx2;
            }
        }
        Level::Baseline
    })
}

macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident => $kernel:path, <$($g:ident : $b:path),*> ($($arg:ident : $ty:ty),*) -> $ret:ty) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)] // reason: the kernel's own argument list
        pub(crate) fn $name<$($g: $b),*>($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
                #[allow(clippy::too_many_arguments)] // reason: the kernel's own argument list
                fn avx512<$($g: $b),*>($($arg: $ty),*) -> $ret {
                    $kernel($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)] // reason: the kernel's own argument list
                fn avx2<$($g: $b),*>($($arg: $ty),*) -> $ret {
                    $kernel($($arg),*)
                }
                match level() {
                    // SAFETY: `level` found AVX-512F and BW (with AVX2 and FMA) on this CPU.
                    Level::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: `level` found AVX2 and FMA on this CPU.
                    Level::Avx2 => return unsafe { avx2($($arg),*) },
                    Level::Baseline => {}
                }
            }
            $kernel($($arg),*)
        }
    };
}

dispatch!(
    /// [`cross_entropy::cross_entropy`] on the widest vector unit.
    cross_entropy => cross_entropy::cross_entropy,
    <T: Float, L: Label>(
        x: &[T],
        target: &[L],
        p: &IndexParams<'_, T>,
        b: Block,
        up: Upstream<'_, T>,
        grad: Option<ClassOut<'_, T>>,
        loss: &mut [T]
    ) -> f64
);

dispatch!(
    /// [`binary::bce_with_logits`] on the widest vector unit.
    bce_with_logits => binary::bce_with_logits,
    <T: Float>(
        x: &[T],
        y: &[T],
        w: Bcast<'_, T>,
        q: Bcast<'_, T>,
        r: std::ops::Range<usize>,
        up: Upstream<'_, T>,
        grad: &mut [T],
        loss: &mut [T]
    ) -> f64
);

dispatch!(
    /// [`binary::bce`] on the widest vector unit.
    bce => binary::bce,
    <T: Float>(
        x: &[T],
        y: &[T],
        w: Bcast<'_, T>,
        r: std::ops::Range<usize>,
        up: Upstream<'_, T>,
        grad: &mut [T],
        loss: &mut [T]
    ) -> f64
);

dispatch!(
    /// [`binary::sigmoid_focal`] on the widest vector unit.
    sigmoid_focal => binary::sigmoid_focal,
    <T: Float>(
        x: &[T],
        y: &[T],
        alpha: T,
        gamma: T,
        r: std::ops::Range<usize>,
        up: Upstream<'_, T>,
        grad: &mut [T],
        loss: &mut [T]
    ) -> f64
);

dispatch!(
    /// [`cross_entropy::cross_entropy_probs`] on the widest vector unit.
    cross_entropy_probs => cross_entropy::cross_entropy_probs,
    <T: Float>(
        x: &[T],
        y: &[T],
        p: &IndexParams<'_, T>,
        b: Block,
        up: Upstream<'_, T>,
        grad: Option<ClassOut<'_, T>>,
        loss: &mut [T]
    ) -> f64
);

dispatch!(
    /// [`focal::focal`] on the widest vector unit.
    focal => focal::focal,
    <T: Float, L: Label>(
        x: &[T],
        target: &[L],
        o: &FocalParams<'_, T>,
        b: Block,
        up: Option<FocalUp<'_, T>>,
        grad: Option<ClassOut<'_, T>>,
        loss: Option<ClassOut<'_, T>>,
        sums: &mut [f64]
    ) -> ()
);

dispatch!(
    /// [`softmax::forward`] on the widest vector unit.
    softmax_forward => softmax::forward,
    <T: Float>(x: &[T], b: Block, cs: usize, classes: usize, log: bool, out: &mut ClassOut<'_, T>) -> ()
);

dispatch!(
    /// [`softmax::backward`] on the widest vector unit.
    softmax_backward => softmax::backward,
    <T: Float>(
        y: &[T],
        g: &[T],
        b: Block,
        cs: usize,
        classes: usize,
        log: bool,
        out: &mut ClassOut<'_, T>
    ) -> ()
);

dispatch!(
    /// [`overlap::sums`] on the widest vector unit.
    overlap_sums => overlap::sums,
    <T: Float, L: Label>(
        x: &[T],
        target: &[L],
        o: &OverlapParams,
        b: Block,
        g0: usize,
        p: &mut [T],
        sums: &mut [f64]
    ) -> ()
);

dispatch!(
    /// [`overlap::backward`] on the widest vector unit.
    overlap_backward => overlap::backward,
    <T: Float, L: Label>(
        x: &[T],
        target: &[L],
        o: &OverlapParams,
        b: Block,
        ab: &[(f64, f64)],
        p: &mut [T],
        dp: &mut [T],
        grad: &mut ClassOut<'_, T>
    ) -> ()
);

dispatch!(
    /// [`counts::tally`] on the widest vector unit.
    tally => counts::tally,
    <L: Label>(labels: &[L], ignore: Option<i64>, counts: &mut [u64]) -> std::result::Result<u64, usize>
);

/// The scratch-tile copies (`tile::to_columns`, `tile::from_columns`) for `f32` rows of 5 to
/// 64 classes, in 16 x 16 blocks transposed by AVX-512 shuffles (the last block of a row
/// overlaps the one before when 16 does not divide the classes; fewer than 16 classes go under
/// masks): the plain copies move one value at a time and cost rows of 19 classes about as much
/// as the loss itself. Return false (nothing done) without AVX-512 or for fewer classes (2 to
/// 4 have their own vectorised copies). Values are only moved, so the result is the plain
/// copy's, bit for bit (tested).
pub(crate) fn to_columns_f32(rows: &[f32], xs: &mut [f32], classes: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    if classes >= 5 && level() == Level::Avx512 {
        // SAFETY: `level` found AVX-512F on this CPU.
        unsafe { columns::to_columns(rows, xs, classes) };
        return true;
    }
    let _ = (rows, xs, classes);
    false
}

/// The reverse of [`to_columns_f32`]: the class-major scratch back into rows.
pub(crate) fn from_columns_f32(xs: &[f32], rows: &mut [f32], classes: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    if classes >= 5 && level() == Level::Avx512 {
        // SAFETY: `level` found AVX-512F on this CPU.
        unsafe { columns::from_columns(xs, rows, classes) };
        return true;
    }
    let _ = (xs, rows, classes);
    false
}

#[cfg(target_arch = "x86_64")]
mod columns {
    use crate::kernel::tile::{from_columns_of, to_columns_of, TILE};
    use std::arch::x86_64::*;

    /// Transposes 16 rows of 16 values in registers (4 rounds of 16 shuffles).
    #[target_feature(enable = "avx512f")]
    fn transpose16(r: &mut [__m512; 16]) {
        let mut t = [_mm512_setzero_ps(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        for i in 0..4 {
            let (a, b, c, d) = (t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3]);
            r[4 * i] = _mm512_shuffle_ps::<0x44>(a, c);
            r[4 * i + 1] = _mm512_shuffle_ps::<0xEE>(a, c);
            r[4 * i + 2] = _mm512_shuffle_ps::<0x44>(b, d);
            r[4 * i + 3] = _mm512_shuffle_ps::<0xEE>(b, d);
        }
        for h in 0..2 {
            for i in 0..4 {
                t[8 * h + i] = _mm512_shuffle_f32x4::<0x88>(r[8 * h + i], r[8 * h + 4 + i]);
                t[8 * h + 4 + i] = _mm512_shuffle_f32x4::<0xDD>(r[8 * h + i], r[8 * h + 4 + i]);
            }
        }
        for i in 0..8 {
            r[i] = _mm512_shuffle_f32x4::<0x88>(t[i], t[8 + i]);
            r[8 + i] = _mm512_shuffle_f32x4::<0xDD>(t[i], t[8 + i]);
        }
    }

    /// First classes of the 16 x 16 blocks of a row of `classes >= 16`.
    fn blocks(classes: usize) -> impl Iterator<Item = usize> {
        (0..classes.div_ceil(16)).map(move |b| (16 * b).min(classes - 16))
    }

    /// Rows `[n, classes]` into the class-major scratch (class `c` at `c * TILE`). Fewer than 16
    /// classes: each row loaded whole under a mask (zeros above), the first `classes` vectors
    /// stored.
    #[target_feature(enable = "avx512f")]
    pub(super) fn to_columns(rows: &[f32], xs: &mut [f32], classes: usize) {
        let n = rows.len() / classes;
        let full = n / 16 * 16;
        for j0 in (0..full).step_by(16) {
            if classes < 16 {
                let mut r = [_mm512_setzero_ps(); 16];
                for (i, v) in r.iter_mut().enumerate() {
                    let s = &rows[(j0 + i) * classes..][..classes];
                    // SAFETY: the mask reads the `classes` floats of `s` only.
                    *v = unsafe { _mm512_maskz_loadu_ps(mask(classes), s.as_ptr()) };
                }
                transpose16(&mut r);
                for (c, v) in r[..classes].iter().enumerate() {
                    store16(&mut xs[c * TILE + j0..], *v);
                }
                continue;
            }
            for c0 in blocks(classes) {
                let mut r = [_mm512_setzero_ps(); 16];
                for (i, v) in r.iter_mut().enumerate() {
                    *v = load16(&rows[(j0 + i) * classes + c0..]);
                }
                transpose16(&mut r);
                for (i, v) in r.iter().enumerate() {
                    store16(&mut xs[(c0 + i) * TILE + j0..], *v);
                }
            }
        }
        // The rows past the last 16, the plain way.
        to_columns_of(&rows[full * classes..], &mut xs[full..], classes);
    }

    /// The class-major scratch back into rows `[n, classes]`. Fewer than 16 classes: the
    /// missing class vectors are zeros, and each row is stored under a mask.
    #[target_feature(enable = "avx512f")]
    pub(super) fn from_columns(xs: &[f32], rows: &mut [f32], classes: usize) {
        let n = rows.len() / classes;
        let full = n / 16 * 16;
        for j0 in (0..full).step_by(16) {
            if classes < 16 {
                let mut r = [_mm512_setzero_ps(); 16];
                for (c, v) in r[..classes].iter_mut().enumerate() {
                    *v = load16(&xs[c * TILE + j0..]);
                }
                transpose16(&mut r);
                for (i, v) in r.iter().enumerate() {
                    let d = &mut rows[(j0 + i) * classes..][..classes];
                    // SAFETY: the mask writes the `classes` floats of `d` only.
                    unsafe { _mm512_mask_storeu_ps(d.as_mut_ptr(), mask(classes), *v) };
                }
                continue;
            }
            for c0 in blocks(classes) {
                let mut r = [_mm512_setzero_ps(); 16];
                for (i, v) in r.iter_mut().enumerate() {
                    *v = load16(&xs[(c0 + i) * TILE + j0..]);
                }
                transpose16(&mut r);
                for (i, v) in r.iter().enumerate() {
                    store16(&mut rows[(j0 + i) * classes + c0..], *v);
                }
            }
        }
        from_columns_of(&xs[full..], &mut rows[full * classes..], classes);
    }

    /// The first `classes` (< 16) lanes.
    fn mask(classes: usize) -> __mmask16 {
        ((1u32 << classes) - 1) as __mmask16
    }

    /// The first 16 floats of `s`.
    #[target_feature(enable = "avx512f")]
    fn load16(s: &[f32]) -> __m512 {
        let s: &[f32; 16] = s[..16].try_into().unwrap();
        // SAFETY: `s` holds 16 floats.
        unsafe { _mm512_loadu_ps(s.as_ptr()) }
    }

    /// `v` into the first 16 floats of `d`.
    #[target_feature(enable = "avx512f")]
    fn store16(d: &mut [f32], v: __m512) {
        let d: &mut [f32; 16] = (&mut d[..16]).try_into().unwrap();
        // SAFETY: `d` holds 16 floats.
        unsafe { _mm512_storeu_ps(d.as_mut_ptr(), v) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Broadcast, Layout};
    use crate::par::for_blocks;

    /// The AVX-512 scratch-tile copies move every value where the plain copies do, for every
    /// class count they take and every row count of a tile.
    #[test]
    fn column_copies_match_the_plain_ones() {
        use crate::kernel::tile::{from_columns_of, to_columns_of, SMALL, TILE};
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
            }
        }
    }

    /// The copy for the widest unit gives the same bits as the baseline one.
    #[test]
    fn every_vector_width_gives_the_same_bits() {
        let mut s = 7u64;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 33) as f32 / (1u64 << 31) as f32
        };
        for shape in [[3usize, 7, 500], [300, 33, 1], [3, 2, 500], [300, 5, 1], [300, 2, 1], [30, 70, 1]] {
            let lay = Layout::classes_of(&shape).unwrap();
            let x: Vec<f32> = (0..shape.iter().product()).map(|_| next() * 20.0 - 10.0).collect();
            let t: Vec<i64> = (0..lay.positions())
                .map(|_| if next() < 0.1 { -1 } else { (next() * lay.classes as f32) as i64 % lay.classes as i64 })
                .collect();
            let w: Vec<f32> = (0..lay.classes).map(|_| next() + 0.5).collect();
            let p = IndexParams {
                classes: lay.classes,
                class_stride: lay.class_stride(),
                weight: Some(&w),
                weight_sum: w.iter().sum(),
                ignore_index: -1,
                // The two-class path runs without smoothing only.
                smoothing: if lay.classes == 2 { 0.0 } else { 0.1 },
            };
            let run = |wide: bool| {
                let mut g = vec![0.0f32; x.len()];
                let mut l = vec![0.0f32; lay.positions()];
                let sums = for_blocks(lay, &mut g, &mut l, |b, gr, lo| {
                    let up = Upstream::All(0.37f32);
                    if wide {
                        cross_entropy(&x, &t, &p, b, up, gr, lo)
                    } else {
                        cross_entropy::cross_entropy(&x, &t, &p, b, up, gr, lo)
                    }
                });
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                (bits(&g), bits(&l), sums.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
            };
            assert!(run(true) == run(false), "{shape:?}");
            // Probability targets.
            let y: Vec<f32> = (0..x.len()).map(|_| next()).collect();
            let run = |wide: bool| {
                let mut g = vec![0.0f32; x.len()];
                let mut l = vec![0.0f32; lay.positions()];
                let sums = for_blocks(lay, &mut g, &mut l, |b, gr, lo| {
                    let up = Upstream::All(0.37f32);
                    if wide {
                        cross_entropy_probs(&x, &y, &p, b, up, gr, lo)
                    } else {
                        cross_entropy::cross_entropy_probs(&x, &y, &p, b, up, gr, lo)
                    }
                });
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                (bits(&g), bits(&l), sums.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
            };
            assert!(run(true) == run(false), "probabilities {shape:?}");
            // Softmax and log-softmax over the same logits.
            for log in [false, true] {
                let run = |wide: bool| {
                    let mut out = vec![0.0f32; x.len()];
                    let cs = lay.class_stride();
                    for_blocks(lay, &mut out, &mut [], |b, o, _| {
                        let mut o = o.unwrap();
                        if wide {
                            softmax_forward(&x, b, cs, lay.classes, log, &mut o);
                        } else {
                            softmax::forward(&x, b, cs, lay.classes, log, &mut o);
                        }
                        0.0
                    });
                    out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                };
                assert!(run(true) == run(false), "softmax {shape:?} log {log}");
                // Its backward, from the baseline's output and the logits as upstream.
                let mut yv = vec![0.0f32; x.len()];
                let cs = lay.class_stride();
                for_blocks(lay, &mut yv, &mut [], |b, o, _| {
                    softmax::forward(&x, b, cs, lay.classes, log, &mut o.unwrap());
                    0.0
                });
                let run = |wide: bool| {
                    let mut out = vec![0.0f32; x.len()];
                    for_blocks(lay, &mut out, &mut [], |b, o, _| {
                        let mut o = o.unwrap();
                        if wide {
                            softmax_backward(&yv, &x, b, cs, lay.classes, log, &mut o);
                        } else {
                            softmax::backward(&yv, &x, b, cs, lay.classes, log, &mut o);
                        }
                        0.0
                    });
                    out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                };
                assert!(run(true) == run(false), "softmax backward {shape:?} log {log}");
            }
            // Focal loss, softmax and sigmoid: the gradient, the class-shaped loss and the sums.
            let first = usize::from(lay.classes > 2);
            let alpha: Vec<f32> = (first..lay.classes).map(|c| 0.2 + 0.1 * c as f32).collect();
            let per: Vec<f32> = (0..lay.outer).map(|i| 0.3 + i as f32 * 0.01).collect();
            for softmax in [true, false] {
                let fo = FocalParams {
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
                let run = |wide: bool| {
                    let (mut g, mut l) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
                    let sums = for_blocks(lay, &mut g, &mut [], |b, gr, _| {
                        let mut sums = vec![0.0f64; b.len + 1];
                        let up = Some(FocalUp::PerSample(&per[..]));
                        if wide {
                            focal(&x, &t, &fo, b, up, gr, None, &mut sums);
                        } else {
                            focal::focal(&x, &t, &fo, b, up, gr, None, &mut sums);
                        }
                        sums.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                    });
                    for_blocks(lay, &mut l, &mut [], |b, lo, _| {
                        let mut sums = vec![0.0f64; b.len + 1];
                        if wide {
                            focal(&x, &t, &fo, b, None, None, lo, &mut sums);
                        } else {
                            focal::focal(&x, &t, &fo, b, None, None, lo, &mut sums);
                        }
                    });
                    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    (bits(&g), bits(&l), sums)
                };
                assert!(run(true) == run(false), "focal {shape:?} softmax {softmax}");
            }
        }
        // Overlap sums and gradients (Dice and friends), softmax and sigmoid, strided positions.
        {
            let shape = [3usize, 7, 500];
            let lay = Layout::classes_of(&shape).unwrap();
            let x: Vec<f32> = (0..shape.iter().product()).map(|_| next() * 20.0 - 10.0).collect();
            let t: Vec<i64> =
                (0..lay.positions()).map(|_| if next() < 0.1 { -1 } else { (next() * 7.0) as i64 % 7 }).collect();
            for activation in [overlap::Activation::Softmax, overlap::Activation::Sigmoid] {
                let o = OverlapParams {
                    classes: 7,
                    class_stride: lay.class_stride(),
                    inner: lay.inner,
                    first: 1,
                    activation,
                    squared: true,
                    ignore_index: Some(-1),
                    batch: false,
                };
                let ab: Vec<(f64, f64)> = (0..3 * 6).map(|i| (0.1 * i as f64, -0.05 * i as f64)).collect();
                let run = |wide: bool| {
                    let mut s = vec![0.0f64; 3 * 6 * 3];
                    let mut g = vec![0.0f32; x.len()];
                    for_blocks(lay, &mut g, &mut [], |b, gr, _| {
                        let (mut p, mut dp) = (vec![0.0f32; 7], vec![0.0f32; 7]);
                        let mut part = vec![0.0f64; 6 * 3];
                        let g0 = o.group(b.p0);
                        if wide {
                            overlap_sums(&x, &t, &o, b, g0, &mut p, &mut part);
                            overlap_backward(&x, &t, &o, b, &ab, &mut p, &mut dp, &mut gr.unwrap());
                        } else {
                            overlap::sums(&x, &t, &o, b, g0, &mut p, &mut part);
                            overlap::backward(&x, &t, &o, b, &ab, &mut p, &mut dp, &mut gr.unwrap());
                        }
                        part.iter().sum::<f64>() + g0 as f64
                    })
                    .iter()
                    .for_each(|v| s[0] += v);
                    (s[0].to_bits(), g.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                };
                assert!(run(true) == run(false), "overlap {activation:?}");
            }
        }
        // BCE with logits: extreme logits, a constant pos_weight and a per-column weight.
        let x: Vec<f32> = (0..3000).map(|i| if i % 97 == 0 { 1e4 } else { next() * 40.0 - 20.0 }).collect();
        let y: Vec<f32> = (0..3000).map(|_| f32::from(u8::from(next() < 0.3))).collect();
        let (wv, qv) = ((0..30).map(|_| next() + 0.5).collect::<Vec<f32>>(), vec![3.5f32]);
        let (wb, qb) =
            (Broadcast::new("w", &[30], &[100, 30]).unwrap(), Broadcast::new("q", &[1], &[100, 30]).unwrap());
        let run = |wide: bool| {
            let (mut g, mut l) = (vec![0.0f32; 3000], vec![0.0f32; 3000]);
            let (w, q) = (Some((&wv[..], &wb)), Some((&qv[..], &qb)));
            let up = Upstream::All(0.37f32);
            let s = if wide {
                bce_with_logits(&x, &y, w, q, 0..3000, up, &mut g, &mut l)
            } else {
                binary::bce_with_logits(&x, &y, w, q, 0..3000, up, &mut g, &mut l)
            };
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            (bits(&g), bits(&l), s.to_bits())
        };
        assert!(run(true) == run(false), "bce_with_logits");
        // Binary cross-entropy on probabilities (the sigmoid of those logits), with the weight.
        let p: Vec<f32> = x.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect();
        let run = |wide: bool| {
            let (mut g, mut l) = (vec![0.0f32; 3000], vec![0.0f32; 3000]);
            let (w, up) = (Some((&wv[..], &wb)), Upstream::All(0.37f32));
            let s = if wide {
                bce(&p, &y, w, 0..3000, up, &mut g, &mut l)
            } else {
                binary::bce(&p, &y, w, 0..3000, up, &mut g, &mut l)
            };
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            (bits(&g), bits(&l), s.to_bits())
        };
        assert!(run(true) == run(false), "bce");
        // Sigmoid focal loss on the same logits, soft targets in [0, 1].
        let y: Vec<f32> =
            (0..3000).map(|i| if i % 3 == 0 { next() } else { f32::from(u8::from(next() < 0.3)) }).collect();
        for (alpha, gamma) in [(0.25f32, 2.0f32), (-1.0, 0.5), (0.6, 0.0)] {
            let run = |wide: bool| {
                let (mut g, mut l) = (vec![0.0f32; 3000], vec![0.0f32; 3000]);
                let up = Upstream::All(0.37f32);
                let s = if wide {
                    sigmoid_focal(&x, &y, alpha, gamma, 0..3000, up, &mut g, &mut l)
                } else {
                    binary::sigmoid_focal(&x, &y, alpha, gamma, 0..3000, up, &mut g, &mut l)
                };
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                (bits(&g), bits(&l), s.to_bits())
            };
            assert!(run(true) == run(false), "sigmoid_focal {alpha} {gamma}");
        }
    }
}
