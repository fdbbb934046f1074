//! The instances of the generic entry points that the workspace's other crates call, compiled
//! once, here.
//!
//! rustc compiles a generic function in the crate that names its type arguments. Where it
//! shares generics (its default at opt-level 0 and 1: `cargo build`, `cargo test`), a crate
//! links to an instance that a crate below it already compiled instead of compiling its own.
//! Nothing in this crate names `LossSpec::index_loss::<f32, u8>`, so xent-candle, xent-burn,
//! xent-cli and each test binary compiled the kernels behind such entry points again, three
//! vector widths each (xent-candle's library held 4.5 MB of kernel code, this crate 1 MB; the
//! workspace's own crates took 1304 s of compile time in a clean test build here, 705 s with
//! this module). [`keep`] names the instances those crates call: the four score types, class
//! indices of the types candle and burn store (u8, u32, i64), float targets, softmax and the
//! language-model head. Not in optimised builds (`debug_assertions` off), where rustc does not
//! share generics and this would only add to the build, nor in this crate's own test build.
#![cfg(all(debug_assertions, not(test)))]

use std::hint::black_box;

use crate::{bf16, f16, Linear, LinearCrossEntropy, LinearGrads, LossOutput, LossSpec, MaybeLoss, Result, View};

/// Kept by the compiler (`#[used]`), and with it [`keep`] and every instance it names.
#[used]
static KEEP: fn() = keep;

/// Names each instance as a function pointer, which makes the compiler compile it.
fn keep() {
    type Lce<'a, S, M, Y> =
        fn(&LinearCrossEntropy<M>, Linear<'a, S>, View<'a, Y>, Option<LinearGrads<'a, S, M>>) -> Result<LossOutput<M>>;
    // The spec's losses (class indices of the types candle and burn store, float targets) and
    // softmax, on scores `$s` computed in `$m`.
    macro_rules! scores {
        ($s:ty, $m:ty, $index:ident, $float:ident) => {{
            black_box(LossSpec::$float::<$s> as fn(&LossSpec) -> MaybeLoss<$s, $s, $m>);
            black_box(LossSpec::$index::<$s, u8> as fn(&LossSpec) -> MaybeLoss<$s, u8, $m>);
            black_box(LossSpec::$index::<$s, u32> as fn(&LossSpec) -> MaybeLoss<$s, u32, $m>);
            black_box(LossSpec::$index::<$s, i64> as fn(&LossSpec) -> MaybeLoss<$s, i64, $m>);
            type F<'a> = fn(View<'a, $s>, i64, &mut [$m]) -> Result<()>;
            type B<'a> = fn(View<'a, $m>, View<'a, $m>, i64, &mut [$s]) -> Result<()>;
            black_box(crate::softmax_into::<$s> as F<'_>);
            black_box(crate::log_softmax_into::<$s> as F<'_>);
            black_box(crate::softmax::<$s> as fn(View<'_, $s>, i64) -> Result<Vec<$m>>);
            black_box(crate::log_softmax::<$s> as fn(View<'_, $s>, i64) -> Result<Vec<$m>>);
            black_box(crate::softmax_backward_into::<$s> as B<'_>);
            black_box(crate::log_softmax_backward_into::<$s> as B<'_>);
        }};
    }
    // The language-model head `$f` on scores `$s` (computed in `$m`) for targets `$y` of each
    // type listed.
    macro_rules! lce {
        ($s:ty, $m:ty, $y:ident => $f:expr; $($t:ty),*) => {$({
            type $y = $t;
            black_box($f as Lce<'_, $s, $m, $y>);
        })*};
    }
    scores!(f32, f32, index_loss, float_loss);
    scores!(f64, f64, index_loss, float_loss);
    scores!(bf16, f32, half_index_loss, half_float_loss);
    scores!(f16, f32, half_index_loss, half_float_loss);
    lce!(f32, f32, Y => LinearCrossEntropy::evaluate::<Y>; u8, u32, i64, f32);
    lce!(f64, f64, Y => LinearCrossEntropy::evaluate::<Y>; u8, u32, i64, f64);
    lce!(bf16, f32, Y => LinearCrossEntropy::evaluate_half::<bf16, Y>; u8, u32, i64);
    lce!(f16, f32, Y => LinearCrossEntropy::evaluate_half::<f16, Y>; u8, u32, i64);
    lce!(bf16, f32, Y => LinearCrossEntropy::evaluate_half_probabilities::<Y>; bf16);
    lce!(f16, f32, Y => LinearCrossEntropy::evaluate_half_probabilities::<Y>; f16);
}
