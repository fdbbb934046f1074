//! Softmax and log-softmax along any dimension, and their backward passes.
//!
//! ```text
//! softmax(x)_c     = exp(x_c - m) / sum_k exp(x_k - m),   m = max_k x_k
//! log_softmax(x)_c = (x_c - m) - ln sum_k exp(x_k - m)
//! ```
//! PyTorch: `torch.softmax(x, dim)`, `torch.log_softmax(x, dim)`; negative `dim` counts from the
//! end. The output has the input's shape.
//!
//! # Example
//! The seed's worked numbers:
//! ```
//! use xent::{log_softmax, softmax, View};
//! let x = View::new(&[1.0f64, 2.0, 3.0], &[3])?;
//! let p = softmax(x, 0)?;
//! let want = [0.0900, 0.2447, 0.6652];
//! assert!(p.iter().zip(want).all(|(p, w)| (p - w).abs() < 1e-4));
//! let lp = log_softmax(x, -1)?;
//! let want = [-2.4076, -1.4076, -0.4076];
//! assert!(lp.iter().zip(want).all(|(p, w)| (p - w).abs() < 1e-4));
//! # Ok::<(), xent::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::float::{Element, Float};
use crate::kernel::{self, Softmax};
use crate::layout::Layout;
use crate::par;
use crate::view::{numel, View};

fn check_out<T>(what: &'static str, out: &[T], want: &[usize]) -> Result<()> {
    if out.len() == numel(want)? {
        return Ok(());
    }
    Err(Error::ShapeMismatch { what, got: vec![out.len()], expected: format!("{want:?}, the input's shape") })
}

fn forward_into<S: Element>(input: View<'_, S>, dim: i64, log: bool, out: &mut [S::Math]) -> Result<()> {
    let (lay, _) = Layout::along(input.shape(), dim)?;
    check_out("output", out, input.shape())?;
    let cs = lay.class_stride();
    par::for_blocks(lay, out, &mut [] as &mut [f64], |b, o, _| {
        if let Some(out) = o {
            kernel::run(Softmax::<S, S::Math> { x: input.data(), g: &[], b, cs, classes: lay.classes, log, out });
        }
    });
    Ok(())
}

fn backward_into<S: Element>(
    output: View<'_, S::Math>,
    grad_output: View<'_, S::Math>,
    dim: i64,
    log: bool,
    grad_input: &mut [S],
) -> Result<()> {
    let (lay, _) = Layout::along(output.shape(), dim)?;
    if grad_output.shape() != output.shape() {
        return Err(Error::ShapeMismatch {
            what: "grad_output",
            got: grad_output.shape().to_vec(),
            expected: format!("{:?}, the output's shape", output.shape()),
        });
    }
    check_out("grad_input", grad_input, output.shape())?;
    let cs = lay.class_stride();
    par::for_blocks(lay, grad_input, &mut [] as &mut [f64], |b, o, _| {
        if let Some(out) = o {
            kernel::run(Softmax::<S::Math, S> {
                x: output.data(),
                g: grad_output.data(),
                b,
                cs,
                classes: lay.classes,
                log,
                out,
            });
        }
    });
    Ok(())
}

/// Softmax of `input` along `dim`, into `out` (the input's length).
///
/// # Errors
/// [`Error::DimOutOfRange`], or an `out` of the wrong length.
pub fn softmax_into<S: Element>(input: View<'_, S>, dim: i64, out: &mut [S::Math]) -> Result<()> {
    forward_into(input, dim, false, out)
}

/// Softmax of `input` along `dim`.
///
/// # Errors
/// [`Error::DimOutOfRange`].
pub fn softmax<S: Element>(input: View<'_, S>, dim: i64) -> Result<Vec<S::Math>> {
    let mut out = vec![S::Math::ZERO; input.len()];
    softmax_into(input, dim, &mut out)?;
    Ok(out)
}

/// Log-softmax of `input` along `dim`, into `out` (the input's length).
///
/// # Errors
/// [`Error::DimOutOfRange`], or an `out` of the wrong length.
pub fn log_softmax_into<S: Element>(input: View<'_, S>, dim: i64, out: &mut [S::Math]) -> Result<()> {
    forward_into(input, dim, true, out)
}

/// Log-softmax of `input` along `dim`.
///
/// # Errors
/// [`Error::DimOutOfRange`].
pub fn log_softmax<S: Element>(input: View<'_, S>, dim: i64) -> Result<Vec<S::Math>> {
    let mut out = vec![S::Math::ZERO; input.len()];
    log_softmax_into(input, dim, &mut out)?;
    Ok(out)
}

/// Gradient of softmax with respect to its input, from its `output` and the upstream
/// `grad_output`: `y * (g - sum(g * y))`, into `grad_input`.
///
/// # Errors
/// [`Error::DimOutOfRange`], mismatched shapes, a `grad_input` of the wrong length.
pub fn softmax_backward_into<S: Element>(
    output: View<'_, S::Math>,
    grad_output: View<'_, S::Math>,
    dim: i64,
    grad_input: &mut [S],
) -> Result<()> {
    backward_into(output, grad_output, dim, false, grad_input)
}

/// Gradient of log-softmax with respect to its input, from its `output` and the upstream
/// `grad_output`: `g - exp(y) * sum(g)`, into `grad_input`.
///
/// # Errors
/// [`Error::DimOutOfRange`], mismatched shapes, a `grad_input` of the wrong length.
pub fn log_softmax_backward_into<S: Element>(
    output: View<'_, S::Math>,
    grad_output: View<'_, S::Math>,
    dim: i64,
    grad_input: &mut [S],
) -> Result<()> {
    backward_into(output, grad_output, dim, true, grad_input)
}
