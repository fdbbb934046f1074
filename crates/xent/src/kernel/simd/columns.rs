//! The AVX-512 register transposes of the scratch-tile copies: they only move values, and every
//! load and store goes through a bounds-checked slice.

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
