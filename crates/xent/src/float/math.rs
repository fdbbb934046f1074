//! `exp` for `f32` as a polynomial, branch-free, so that LLVM vectorises loops that call it
//! (libm's scalar `expf` alone costs more than reading the logits from memory).
//!
//! ```text
//! e^x = 2^n e^r,  n = round(x / ln 2),  r = x - n ln 2 in [-ln2/2, ln2/2] (ln 2 split in two parts)
//! e^r = 1 + r (c1 + r (c2 + r (c3 + r (c4 + r (c5 + r c6)))))   (c_k ~ 1/k!, relative minimax)
//! ```
//! for `x <= 0`, evaluated with fused multiply-adds (exactly rounded wherever they run, so the
//! bits do not depend on the vector width). Relative error below 8.4e-8 (1 ulp; the degree-6 fit
//! alone is within 2e-9, as close as Cephes' degree-7 one in six operations instead of eight).
//! Down to -103.98 the result may be subnormal, as libm's (and PyTorch's): `2^n` is applied as
//! `2^(n + 64)` and then `2^-64`, so a normal result is exact scaling (the same bits as one
//! factor) and a subnormal one is rounded once; 0 below; NaN for NaN.
//!
//! `ln` likewise (fused multiply-adds too), from the exponent bits and a polynomial of the
//! mantissa (Cephes' `logf`):
//! ```text
//! x = 2^e m, m in [sqrt(1/2), sqrt(2)),  f = m - 1
//! ln x = e ln 2 + f - f^2/2 + f^3 P(f)
//! ```

/// `e^x` in `f32` for `x <= 0` (or NaN), vectorisable: every caller exponentiates a
/// non-positive number (`x - max`, `-|x|`). Positive `x` is a bug (`debug_assert`); in release
/// builds it gives `e^min(x, 0)`.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    debug_assert!(x <= 0.0 || x.is_nan(), "exp_f32({x}): the argument must not be positive");
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    // Below LO, `e^x` is under half the smallest subnormal (2^-150, at -103.97): 0.
    const LO: f32 = -103.98;
    // Comparisons with NaN are false: NaN passes through the clamps.
    let xc = if x > 0.0 { 0.0 } else { x };
    let xc = if xc < LO { LO } else { xc };
    // Round to nearest by adding 1.5 * 2^23: the integer then sits in the low mantissa bits,
    // read without a float-to-int conversion (whose saturating form does not vectorise).
    const MAGIC: f32 = 12_582_912.0;
    let shifted = xc.mul_add(LOG2E, MAGIC);
    let n = shifted - MAGIC;
    let ni = shifted.to_bits() as i32 - MAGIC.to_bits() as i32;
    let r = (-n).mul_add(C1, xc);
    let r = (-n).mul_add(C2, r);
    let p = 1.384_365_4e-3f32;
    let p = p.mul_add(r, 8.374_155_5e-3);
    let p = p.mul_add(r, 4.166_8e-2);
    let p = p.mul_add(r, 1.666_643_2e-1);
    let p = p.mul_add(r, 4.999_999_4e-1);
    let p = p.mul_add(r, 1.0);
    let y = p.mul_add(r, 1.0);
    // 2^(n + 64) from its exponent bits (n in -150..=0: a normal number), then 2^-64: exact
    // while the result is normal, one rounding where it is subnormal.
    let v = y * f32::from_bits(((ni + 127 + 64) as u32) << 23) * f32::from_bits((127 - 64) << 23);
    if x < LO {
        0.0
    } else {
        v
    }
}

/// `e ln 2 + ln(1 + f)` for `f` in `[sqrt(1/2) - 1, sqrt 2 - 1]`: Cephes' `logf` polynomial
/// (`ln(1 + f) = f - f^2/2 + f^3 P(f)`), `ln 2` in two parts. Both logarithms below end here.
#[inline(always)]
fn ln_reduced(f: f32, e: f32) -> f32 {
    let z = f * f;
    let y = 7.037_683_6e-2f32;
    let y = y.mul_add(f, -1.151_461e-1);
    let y = y.mul_add(f, 1.167_699_9e-1);
    let y = y.mul_add(f, -1.242_014_1e-1);
    let y = y.mul_add(f, 1.424_932_3e-1);
    let y = y.mul_add(f, -1.666_805_8e-1);
    let y = y.mul_add(f, 2.000_071_4e-1);
    let y = y.mul_add(f, -2.499_999_4e-1);
    let y = y.mul_add(f, 3.333_333e-1);
    let y = y * f * z;
    let y = e.mul_add(-2.121_944_4e-4, y);
    let y = (-0.5f32).mul_add(z, y);
    e.mul_add(0.693_359_4, f + y)
}

/// `ln x` in `f32`, vectorisable; for positive `x` within 2 ulp (subnormals are scaled by
/// `2^24` first, and `24 ln 2` taken off again), `-inf` at 0, `+inf` at `+inf`, NaN for
/// negative numbers and NaN.
#[inline(always)]
pub(crate) fn ln_f32(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let sub = x < f32::MIN_POSITIVE;
    let xs = if sub { x * 16_777_216.0 } else { x };
    let bits = xs.to_bits() as i32;
    let e = ((bits >> 23) & 0xff) - if sub { 150 } else { 126 };
    let m = f32::from_bits(((bits & 0x007f_ffff) | 0x3f00_0000) as u32); // in [0.5, 1)
    let small = m < SQRT_HALF;
    let e = (if small { e - 1 } else { e }) as f32;
    let f = if small { m + m - 1.0 } else { m - 1.0 };
    let r = ln_reduced(f, e);
    if x == f32::INFINITY {
        f32::INFINITY
    } else if x == 0.0 {
        f32::NEG_INFINITY
    } else if x > 0.0 {
        r
    } else {
        f32::NAN
    }
}

/// `ln(1 - x)` in `f32` for `x` in `[0, 1]` (or NaN), vectorisable, as accurate as `ln_1p(-x)`:
/// with `v = 1 - x` rounded and `d = (1 - v) - x` its rounding error (both exact),
/// `ln(1 - x) = ln v + ln(1 + d / v) = ln v + d (2 - v)` to within `|d| (1 - v)^2` (`v` is in
/// `[1/2, 1]` wherever `d` is not 0, and `|d| <= 2^-25`); `-inf` at 1.
#[inline(always)]
pub(crate) fn ln_1m_unit_f32(x: f32) -> f32 {
    debug_assert!((0.0..=1.0).contains(&x) || x.is_nan(), "ln_1m_unit_f32({x}): the argument must be in [0, 1]");
    let v = 1.0 - x;
    let d = (1.0 - v) - x;
    d.mul_add(2.0 - v, ln_f32(v))
}

/// `ln(1 + u)` in `f32` for `u` in `[0, 1]` (or NaN), vectorisable, no division and no
/// rounding of `1 + u`: `ln(1 + u) = u + u^2 Q(u)` with `Q` a degree-9 polynomial fitted to
/// `(ln(1 + u) - u) / u^2` (relative minimax on `[0, 1]`, error 8e-10 before rounding; 1.35 ulp
/// at most after it, as Cephes' `logf` route). Eleven operations instead of the twenty of a
/// range-reduced logarithm.
#[inline(always)]
pub(crate) fn ln_1p_unit_f32(u: f32) -> f32 {
    debug_assert!((0.0..=1.0).contains(&u) || u.is_nan(), "ln_1p_unit_f32({u}): the argument must be in [0, 1]");
    let q = 2.072_928_2e-3f32;
    let q = q.mul_add(u, -1.363_138_5e-2);
    let q = q.mul_add(u, 4.198_116e-2);
    let q = q.mul_add(u, -8.307_383e-2);
    let q = q.mul_add(u, 1.246_710_6e-1);
    let q = q.mul_add(u, -1.612_932_8e-1);
    let q = q.mul_add(u, 1.989_793e-1);
    let q = q.mul_add(u, -2.498_857_8e-1);
    let q = q.mul_add(u, 3.333_269e-1);
    let q = q.mul_add(u, -4.999_998_8e-1);
    (q * u).mul_add(u, u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_is_within_two_ulp_of_libm() {
        let mut x = -86.9f32;
        while x <= 0.0 {
            let (got, want) = (exp_f32(x), (x as f64).exp());
            assert!(((got as f64 - want) / want).abs() < 1e-7, "exp({x}) = {got}, want {want}");
            x += 0.0037;
        }
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(-0.0), 1.0);
        // Subnormal results, as libm's, within one subnormal step; 0 below half the smallest.
        let mut x = -86.9f32;
        while x > -103.9 {
            let (got, want) = (exp_f32(x) as f64, (x as f64).exp());
            assert!((got - want).abs() <= want * 1e-7 + 1.5e-45, "exp({x}) = {got}, want {want}");
            x -= 0.0037;
        }
        assert!(exp_f32(-90.0) > 0.0 && exp_f32(-90.0) < f32::MIN_POSITIVE);
        assert_eq!(exp_f32(-104.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert!(exp_f32(f32::NAN).is_nan() && exp_f32(-f32::NAN).is_nan());
    }

    #[test]
    fn ln_1p_unit_f32_is_within_two_ulp_of_libm() {
        let mut u = 0.0f32;
        while u <= 1.0 {
            let (got, want) = (ln_1p_unit_f32(u), (u as f64).ln_1p());
            assert!((got as f64 - want).abs() <= 1.5e-7 * want, "ln_1p({u}) = {got}, want {want}");
            u = if u < 1e-6 { u + 1e-9 } else { u * 1.0007 + 1e-7 };
        }
        for u in [0.0f32, 1.0, f32::MIN_POSITIVE, 1e-30, 0.41421354, 0.41421357, 0.5, 0.99999994] {
            let (got, want) = (ln_1p_unit_f32(u), (u as f64).ln_1p());
            assert!((got as f64 - want).abs() <= 1.5e-7 * want, "ln_1p({u}) = {got}, want {want}");
        }
        assert!(ln_1p_unit_f32(f32::NAN).is_nan());
    }

    #[test]
    fn ln_1m_unit_f32_is_within_two_ulp_of_libm() {
        let mut x = 0.0f32;
        while x <= 1.0 {
            let (got, want) = (ln_1m_unit_f32(x), (-(x as f64)).ln_1p());
            assert!((got as f64 - want).abs() <= 2.5e-7 * want.abs(), "ln(1 - {x}) = {got}, want {want}");
            x = if x < 1e-6 { x + 1e-9 } else { x * 1.0007 + 1e-7 };
        }
        for x in [0.0f32, 1e-30, 5.960_464_5e-8, 0.5, 0.500_000_06, 0.999_999_94] {
            let (got, want) = (ln_1m_unit_f32(x), (-(x as f64)).ln_1p());
            assert!((got as f64 - want).abs() <= 2.5e-7 * want.abs(), "ln(1 - {x}) = {got}, want {want}");
        }
        assert_eq!(ln_1m_unit_f32(1.0), f32::NEG_INFINITY);
        assert!(ln_1m_unit_f32(f32::NAN).is_nan());
    }

    #[test]
    fn ln_f32_is_within_two_ulp_of_libm() {
        let mut x = 1.0e-40f32;
        while x < 3.0e38 {
            let (got, want) = (ln_f32(x), (x as f64).ln());
            assert!((got as f64 - want).abs() <= 2.5e-7 * want.abs().max(1.0), "ln({x}) = {got}, want {want}");
            x *= 1.0173;
        }
        for x in [1.0f32, 2.0, 0.5, 1.0 + f32::EPSILON, 19.0] {
            assert!((ln_f32(x) as f64 - (x as f64).ln()).abs() < 2e-7, "{x}");
        }
        // Subnormals, the smallest first.
        for x in [1.4e-45f32, 1e-44, 3e-42, 1.1e-38, f32::MIN_POSITIVE] {
            let want = (x as f64).ln();
            assert!((ln_f32(x) as f64 - want).abs() <= 1.5e-7 * want.abs(), "ln({x}) = {}", ln_f32(x));
        }
        assert_eq!(ln_f32(0.0), f32::NEG_INFINITY);
        assert_eq!(ln_f32(f32::INFINITY), f32::INFINITY);
        assert!(ln_f32(-1.0).is_nan() && ln_f32(f32::NAN).is_nan());
    }
}
