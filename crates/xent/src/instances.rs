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
    // Scores `$s`, computed in `$m`: the spec's losses on class indices and on float targets,
    // softmax, and the language-model head on class indices and on probabilities.
    macro_rules! instances {
        ($s:ty, $m:ty, $index:ident, $float:ident, $($lce:ident)::+ ($($h:ty,)?), $probs:ident) => {{
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
            type E<'a, Y> =
                fn(&LinearCrossEntropy<$m>, Linear<'a, $s>, View<'a, Y>, Option<LinearGrads<'a, $s, $m>>) -> Result<LossOutput<$m>>;
            black_box($($lce)::+::<$($h,)? u8> as E<'_, u8>);
            black_box($($lce)::+::<$($h,)? u32> as E<'_, u32>);
            black_box($($lce)::+::<$($h,)? i64> as E<'_, i64>);
            black_box(LinearCrossEntropy::<$m>::$probs::<$s> as E<'_, $s>);
        }};
    }
    instances!(f32, f32, index_loss, float_loss, LinearCrossEntropy::evaluate(), evaluate);
    instances!(f64, f64, index_loss, float_loss, LinearCrossEntropy::evaluate(), evaluate);
    instances!(
        bf16,
        f32,
        half_index_loss,
        half_float_loss,
        LinearCrossEntropy::evaluate_half(bf16,),
        evaluate_half_probabilities
    );
    instances!(
        f16,
        f32,
        half_index_loss,
        half_float_loss,
        LinearCrossEntropy::evaluate_half(f16,),
        evaluate_half_probabilities
    );
}
