//! Element types: the sealed [`Element`] trait for what inputs and gradients are stored in
//! (`f32`, `f64`, `bf16`, `f16`), the [`Float`] trait for the two the maths runs in (`f32`,
//! `f64`), and the [`Label`] trait for the integer types that class-index targets come in.

use std::fmt::{Debug, Display};
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

pub(crate) mod gemm;
pub(crate) mod math;

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
    impl Sealed for usize {}
    impl Sealed for i8 {}
    impl Sealed for i16 {}
    impl Sealed for i32 {}
    impl Sealed for i64 {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for half::bf16 {}
    impl Sealed for half::f16 {}
}

pub use half::{bf16, f16};

/// What inputs and gradients are stored in (sealed): `f32` and `f64`, whose maths runs in
/// themselves, and `bf16` and `f16`, whose maths runs in `f32`: each value is widened exactly
/// when read, and a gradient rounded once (to nearest, ties to even) when written.
pub trait Element: sealed::Sealed + Copy + Send + Sync + Debug + PartialEq + 'static {
    /// The type the maths runs in.
    type Math: Float;
    /// `"f32"`, `"f64"`, `"bf16"` or `"f16"`.
    const NAME: &'static str;
    /// The value in the maths type (exact).
    fn widen(self) -> Self::Math;
    /// `v` rounded to this type (to nearest, ties to even).
    fn narrow(v: Self::Math) -> Self;
    /// `dst[i] = src[i].widen()` (vector instructions where the CPU has them).
    fn widen_slice(src: &[Self], dst: &mut [Self::Math]);
    /// `dst[i] = narrow(src[i])`.
    fn narrow_slice(src: &[Self::Math], dst: &mut [Self]);
    /// The values as the maths type, when they are stored in it (`f32`, `f64`).
    #[doc(hidden)]
    fn as_math(v: &[Self]) -> Option<&[Self::Math]>;
    /// The values as the maths type, when they are stored in it (`f32`, `f64`).
    #[doc(hidden)]
    fn as_math_mut(v: &mut [Self]) -> Option<&mut [Self::Math]>;
}

macro_rules! impl_element_float {
    ($t:ty) => {
        impl Element for $t {
            type Math = $t;
            const NAME: &'static str = stringify!($t);
            #[inline(always)]
            fn widen(self) -> $t {
                self
            }
            #[inline(always)]
            fn narrow(v: $t) -> $t {
                v
            }
            #[inline(always)]
            fn widen_slice(src: &[$t], dst: &mut [$t]) {
                dst.copy_from_slice(src);
            }
            #[inline(always)]
            fn narrow_slice(src: &[$t], dst: &mut [$t]) {
                dst.copy_from_slice(src);
            }
            #[inline(always)]
            fn as_math(v: &[$t]) -> Option<&[$t]> {
                Some(v)
            }
            #[inline(always)]
            fn as_math_mut(v: &mut [$t]) -> Option<&mut [$t]> {
                Some(v)
            }
        }
    };
}
impl_element_float!(f32);
impl_element_float!(f64);

macro_rules! impl_element_half {
    ($t:ty, $widen:expr) => {
        impl Element for $t {
            type Math = f32;
            const NAME: &'static str = stringify!($t);
            #[inline(always)]
            fn widen(self) -> f32 {
                $widen(self)
            }
            #[inline(always)]
            fn narrow(v: f32) -> $t {
                <$t>::from_f32(v)
            }
            #[inline(always)]
            fn widen_slice(src: &[$t], dst: &mut [f32]) {
                use half::slice::HalfFloatSliceExt;
                src.convert_to_f32_slice(dst);
            }
            #[inline(always)]
            fn narrow_slice(src: &[f32], dst: &mut [$t]) {
                use half::slice::HalfFloatSliceExt;
                dst.convert_from_f32_slice(src);
            }
            #[inline(always)]
            fn as_math(_: &[$t]) -> Option<&[f32]> {
                None
            }
            #[inline(always)]
            fn as_math_mut(_: &mut [$t]) -> Option<&mut [f32]> {
                None
            }
        }
    };
}
impl_element_half!(bf16, bf16::to_f32);
impl_element_half!(f16, f16_to_f32);

/// `h` as an `f32`, exactly, with the bits of `f16::to_f32` (NaNs quieted), in integer
/// operations and selects that LLVM vectorises: the `half` crate's conversion of one value
/// asks the CPU for F16C each time, which keeps the kernels' loops over `f16` scalar.
/// With `e` the exponent and mantissa bits moved to `f32`'s places:
/// normal `e + (127 - 15) << 23`; subnormal (and zero) the same plus `1 << 23`, less `2^-14`
/// (exact); infinity and NaN `e | 0x7f80_0000`.
#[inline(always)]
fn f16_to_f32(h: f16) -> f32 {
    let h = h.to_bits() as u32;
    let e = (h & 0x7fff) << 13;
    let top = 0x7c00 << 13;
    let normal = e + ((127 - 15) << 23);
    let sub = (f32::from_bits(normal + (1 << 23)) - f32::from_bits(113 << 23)).to_bits();
    let special = e | 0x7f80_0000 | if e > top { 0x0040_0000 } else { 0 };
    let v = if e >= top {
        special
    } else if e < 1 << 23 {
        sub
    } else {
        normal
    };
    f32::from_bits(v | (h & 0x8000) << 16)
}

mod storage {
    /// What a float type's storage is, for the few kernels that move values with instructions
    /// of one width (the AVX-512 scratch-tile copies of `f32` rows): safe views, no casts.
    pub trait Storage: Sized {
        /// The values as `f32`s, if `Self` is `f32`.
        fn f32s(v: &[Self]) -> Option<&[f32]>;
        /// The values as `f32`s, if `Self` is `f32`.
        fn f32s_mut(v: &mut [Self]) -> Option<&mut [f32]>;
        /// `dst = a b` or `dst += a b` on `par`'s threads (see `gemm::matmul`).
        fn matmul(dst: MatMut<'_, Self>, a: MatRef<'_, Self>, b: MatRef<'_, Self>, accumulate: bool, par: Par);
        /// This thread's pool of block scratch vectors (see `kernel::Pooled`).
        fn pool() -> &'static LocalKey<RefCell<Vec<Vec<Self>>>>;
    }
    use std::cell::RefCell;
    use std::thread::LocalKey;
    thread_local! {
        static POOL_F32: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
        static POOL_F64: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
    }
    use faer::{MatMut, MatRef, Par};
    macro_rules! faer_matmul {
        () => {
            fn matmul(dst: MatMut<'_, Self>, a: MatRef<'_, Self>, b: MatRef<'_, Self>, accumulate: bool, par: Par) {
                let accum = if accumulate { faer::Accum::Add } else { faer::Accum::Replace };
                faer::linalg::matmul::matmul(dst, accum, a, b, 1.0, par);
            }
        };
    }
    impl Storage for f32 {
        #[inline(always)]
        fn f32s(v: &[f32]) -> Option<&[f32]> {
            Some(v)
        }
        #[inline(always)]
        fn f32s_mut(v: &mut [f32]) -> Option<&mut [f32]> {
            Some(v)
        }
        faer_matmul!();
        fn pool() -> &'static LocalKey<RefCell<Vec<Vec<f32>>>> {
            &POOL_F32
        }
    }
    impl Storage for f64 {
        #[inline(always)]
        fn f32s(_: &[f64]) -> Option<&[f32]> {
            None
        }
        #[inline(always)]
        fn f32s_mut(_: &mut [f64]) -> Option<&mut [f32]> {
            None
        }
        faer_matmul!();
        fn pool() -> &'static LocalKey<RefCell<Vec<Vec<f64>>>> {
            &POOL_F64
        }
    }
}

/// A floating-point element type: `f32` or `f64` (sealed).
///
/// Per-element maths runs in `Self`; sums over many elements are accumulated in `f64`.
pub trait Float:
    Element<Math = Self>
    + storage::Storage
    + Copy
    + Send
    + Sync
    + Debug
    + Display
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + 'static
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// `-inf`.
    const NEG_INFINITY: Self;
    /// A quiet NaN.
    const NAN: Self;
    /// `e^self`.
    fn exp(self) -> Self;
    /// `e^self` by a vectorisable polynomial for `f32` (about 1 ulp), libm's for `f64`.
    fn exp_fast(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Natural logarithm by a vectorisable polynomial for `f32` (about 1 ulp for normal
    /// numbers), libm's for `f64`.
    fn ln_fast(self) -> Self;
    /// `ln(1 + self)`, accurate near 0.
    fn ln_1p(self) -> Self;
    /// `ln(1 + self)` for `self` in `[0, 1]` by a vectorisable polynomial for `f32` (about
    /// 1 ulp), libm's for `f64`.
    fn ln_1p_unit(self) -> Self;
    /// `ln(1 - self)` for `self` in `[0, 1]` by a vectorisable polynomial for `f32` (about
    /// 1 ulp, as accurate as `ln_1p(-self)`), libm's `ln_1p(-self)` for `f64`.
    fn ln_1m_unit(self) -> Self;
    /// `self * a + b` with one rounding (exact wherever it runs, so the bits do not depend on
    /// the vector width; a CPU without FMA gets libm's, slow).
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// `self^e`.
    fn powf(self, e: Self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// The larger of two values; a NaN in `self` is kept (NaN propagates as in PyTorch's `max`).
    fn max_nan(self, other: Self) -> Self;
    /// The smaller of two values (IEEE `minNum`).
    fn min(self, other: Self) -> Self;
    /// Whether the value is neither infinite nor NaN.
    fn is_finite(self) -> bool;
    /// Whether the value is NaN.
    fn is_nan(self) -> bool;
    /// Rounds an `f64` to `Self`.
    fn from_f64(v: f64) -> Self;
    /// Widens to `f64` exactly.
    fn to_f64(self) -> f64;
}

macro_rules! fast_exp {
    (f32, $x:expr) => {
        crate::float::math::exp_f32($x)
    };
    (f64, $x:expr) => {
        f64::exp($x)
    };
}

macro_rules! fast_ln {
    (f32, $x:expr) => {
        crate::float::math::ln_f32($x)
    };
    (f64, $x:expr) => {
        f64::ln($x)
    };
}

macro_rules! fast_ln_1p_unit {
    (f32, $x:expr) => {
        crate::float::math::ln_1p_unit_f32($x)
    };
    (f64, $x:expr) => {
        f64::ln_1p($x)
    };
}

macro_rules! fast_ln_1m_unit {
    (f32, $x:expr) => {
        crate::float::math::ln_1m_unit_f32($x)
    };
    (f64, $x:expr) => {
        f64::ln_1p(-$x)
    };
}

macro_rules! impl_float {
    ($t:ident) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INFINITY: Self = $t::NEG_INFINITY;
            const NAN: Self = $t::NAN;
            #[inline(always)]
            fn exp(self) -> Self {
                $t::exp(self)
            }
            #[inline(always)]
            fn exp_fast(self) -> Self {
                fast_exp!($t, self)
            }
            #[inline(always)]
            fn ln_fast(self) -> Self {
                fast_ln!($t, self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                $t::ln(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                $t::ln_1p(self)
            }
            #[inline(always)]
            fn ln_1p_unit(self) -> Self {
                fast_ln_1p_unit!($t, self)
            }
            #[inline(always)]
            fn ln_1m_unit(self) -> Self {
                fast_ln_1m_unit!($t, self)
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                $t::mul_add(self, a, b)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                $t::abs(self)
            }
            #[inline(always)]
            fn powf(self, e: Self) -> Self {
                $t::powf(self, e)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                $t::sqrt(self)
            }
            #[inline(always)]
            fn max_nan(self, other: Self) -> Self {
                if self.is_nan() || self >= other {
                    self
                } else {
                    other
                }
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                $t::min(self, other)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                $t::is_finite(self)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                $t::is_nan(self)
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    };
}
impl_float!(f32);
impl_float!(f64);

/// Class-index targets of any [`Label`] type, the type erased: a kernel that reads its labels a
/// tile at a time (`Targets::lanes` or `Targets::bins`, in the kernels; `Targets::class_at` for
/// one position) is compiled once per score type instead of once per score and label type (times
/// the vector units it is compiled for). The cross-entropy, NLL and focal kernels read them so.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a> {
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
    U64(&'a [u64]),
    Usize(&'a [usize]),
    I8(&'a [i8]),
    I16(&'a [i16]),
    I32(&'a [i32]),
    I64(&'a [i64]),
}

/// An integer type that class-index targets and label maps are stored in
/// (`u8`, `u16`, `u32`, `u64`, `usize`, `i8`, `i16`, `i32`, `i64`; sealed).
pub trait Label: sealed::Sealed + Copy + PartialEq + Send + Sync + Debug + 'static {
    /// The value, widened losslessly.
    fn to_i128(self) -> i128;
    /// `v` as this type, if it can hold it.
    fn from_i64(v: i64) -> Option<Self>;
    /// Where the label falls among `classes < u32::MAX` classes: its class in `0..classes`,
    /// `classes` if it equals `ignore` (checked first, as in PyTorch, so an ignore value inside
    /// the class range wins), `classes + 1` for any other value. Exact, and vectorisable at the
    /// type's own width.
    fn bin(self, classes: u32, ignore: Option<i64>) -> u32;
    /// The targets with their type erased, as the kernels compiled once per score type read them.
    #[doc(hidden)]
    fn erase(v: &[Self]) -> Targets<'_>;
    /// The class of a target that passed the range check: `None` if it equals `ignore_index`.
    #[inline(always)]
    fn class_of(self, ignore_index: i64) -> Option<usize> {
        let v = self.to_i128();
        if v == ignore_index as i128 {
            None
        } else {
            Some(v as usize)
        }
    }
}

macro_rules! impl_label {
    ($($t:ty => $wide:ty: $variant:ident),*) => {$(
        impl Label for $t {
            #[inline(always)]
            fn erase(v: &[$t]) -> Targets<'_> {
                Targets::$variant(v)
            }
            #[inline(always)]
            fn to_i128(self) -> i128 {
                self as i128
            }
            #[inline(always)]
            fn from_i64(v: i64) -> Option<Self> {
                <$t>::try_from(v).ok()
            }
            #[inline(always)]
            #[allow(unused_comparisons, clippy::absurd_extreme_comparisons)] // `self >= 0` when unsigned
            fn bin(self, classes: u32, ignore: Option<i64>) -> u32 {
                // An ignore value the type cannot hold matches no label.
                let ignore = ignore.and_then(Self::from_i64);
                if ignore == Some(self) {
                    classes
                } else if self >= 0 && (self as $wide) < classes as $wide {
                    self as u32
                } else {
                    classes + 1
                }
            }
        }
    )*};
}
impl_label!(u8 => u32: U8, u16 => u32: U16, u32 => u32: U32, u64 => u64: U64, usize => u64: Usize, i8 => u32: I8, i16 => u32: I16, i32 => u32: I32, i64 => u64: I64);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every one of the 65536 `f16` values (NaNs included) widens to the bits of the `half`
    /// crate's conversion.
    #[test]
    fn f16_widen_matches_half_on_every_value() {
        for b in 0..=u16::MAX {
            let h = f16::from_bits(b);
            assert_eq!(f16_to_f32(h).to_bits(), h.to_f32().to_bits(), "f16 bits {b:#06x}");
        }
    }
}
