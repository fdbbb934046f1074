//! The overlap and MONAI focal losses, which need whole-image sums: arrays read whole.

use super::report::Report;
use super::stream::GradOut;
use super::{class_weights, eval, Act, Args, Name};
use crate::arrays::{Element, Source};
use anyhow::{Context, Result};
use xent::*;

/// The overlap and MONAI focal losses, on whole arrays.
pub(super) fn whole_loss<T: Float + Element>(a: &Args, x: &Source, t: &Source) -> Result<Report> {
    let red = a.reduction;
    let xv = x.read_all::<T>()?;
    let tv = t.read_all::<i64>()?;
    let (xview, tview) = (View::new(&xv, &x.shape)?, View::new(&tv, &t.shape)?);
    let act = |default| match a.activation.unwrap_or(default) {
        Act::Softmax => Activation::Softmax,
        Act::Sigmoid => Activation::Sigmoid,
        Act::None => Activation::Identity,
    };
    let include_background = !a.no_background;
    let mut g = vec![T::ZERO; if a.grad_out.is_some() { xv.len() } else { 0 }];
    let go = [T::ONE];
    let fb = a.grad_out.is_some();
    let ctx = || format!("{} / {}", x.path.display(), t.path.display());
    let out = match a.loss {
        Name::Dice => {
            let l = DiceLoss::new(DiceOptions {
                activation: act(Act::Softmax),
                include_background,
                batch: a.batch,
                weight: class_weights::<T>(a)?,
                ignore_index: a.ignore_index,
                reduction: red,
                ..Default::default()
            })?;
            eval(&l, xview, tview, fb.then_some((&go[..], &mut g[..])))
        }
        Name::GeneralizedDice => {
            let l = GeneralizedDiceLoss::new(GeneralizedDiceOptions {
                activation: act(Act::Softmax),
                include_background,
                batch: a.batch,
                ignore_index: a.ignore_index,
                reduction: red,
                ..Default::default()
            })?;
            eval(&l, xview, tview, fb.then_some((&go[..], &mut g[..])))
        }
        Name::Tversky => {
            let l = TverskyLoss::new(TverskyOptions {
                activation: act(Act::Softmax),
                include_background,
                alpha: a.alpha.unwrap_or(0.5),
                beta: a.beta.unwrap_or(0.5),
                batch: a.batch,
                ignore_index: a.ignore_index,
                reduction: red,
                ..Default::default()
            })?;
            eval(&l, xview, tview, fb.then_some((&go[..], &mut g[..])))
        }
        _ => {
            let l = FocalLoss::new(FocalOptions {
                include_background,
                gamma: a.gamma.unwrap_or(2.0),
                alpha: a.alpha.map_or(FocalAlpha::None, FocalAlpha::Scalar),
                weight: class_weights::<T>(a)?,
                activation: act(Act::Sigmoid),
                ignore_index: a.ignore_index,
                reduction: red,
            })?;
            eval(&l, xview, tview, fb.then_some((&go[..], &mut g[..])))
        }
    }
    .with_context(ctx)?;
    let mut grad = GradOut::new::<T>(&a.grad_out, &x.shape)?;
    grad.write(&g)?;
    grad.commit()?;
    Ok(Report {
        loss: out.loss[0].to_f64(),
        sum: out.weighted_sum.value(),
        denominator: out.denominator.value(),
        ignored: None,
        per_class: None,
        chunks: 1,
    })
}
