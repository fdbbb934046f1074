//! The overlap and MONAI focal losses, which need whole-image sums: arrays read whole.

use super::report::Report;
use super::stream::GradOut;
use super::{class_weights, eval, Act, Args, Name};
use crate::arrays::{Element, Source};
use anyhow::{bail, Context, Result};
use xent::*;

/// The options of the overlap and MONAI focal losses, from the flags.
struct Flags<'a, T> {
    a: &'a Args,
    weight: Option<Vec<T>>,
}

impl<T: Float + Element> Flags<'_, T> {
    fn act(&self, default: Act) -> Activation {
        match self.a.activation.unwrap_or(default) {
            Act::Softmax => Activation::Softmax,
            Act::Sigmoid => Activation::Sigmoid,
            Act::None => Activation::Identity,
        }
    }
    /// One number weighs every class alike (MONAI's scalar `weight`), a list each class.
    fn class_weight(&self) -> Option<ClassWeight<T>> {
        self.weight.clone().map(|w| if w.len() == 1 { ClassWeight::Uniform(w[0]) } else { ClassWeight::PerClass(w) })
    }
    fn dice(&self) -> Result<DiceLoss<T>> {
        let a = self.a;
        Ok(DiceLoss::new(DiceOptions {
            activation: self.act(Act::Softmax),
            include_background: !a.no_background,
            batch: a.batch,
            weight: self.class_weight(),
            ignore_index: a.ignore_index,
            reduction: a.reduction,
            ..Default::default()
        })?)
    }
    fn tversky(&self) -> Result<TverskyLoss<T>> {
        let a = self.a;
        Ok(TverskyLoss::new(TverskyOptions {
            activation: self.act(Act::Softmax),
            include_background: !a.no_background,
            alpha: a.alpha.unwrap_or(0.5),
            beta: a.beta.unwrap_or(0.5),
            batch: a.batch,
            ignore_index: a.ignore_index,
            reduction: a.reduction,
            ..Default::default()
        })?)
    }
}

/// The overlap and MONAI focal losses, on whole arrays.
pub(super) fn whole_loss<T: Float + Element>(a: &Args, x: &Source, t: &Source) -> Result<Report>
where
    DiceLoss<T>: Loss<T, T>,
    TverskyLoss<T>: Loss<T, T>,
{
    let xv = x.read_all::<T>()?;
    let xview = View::new(&xv, &x.shape)?;
    let f = Flags { a, weight: class_weights::<T>(a)? };
    let mut g = vec![T::ZERO; if a.grad_out.is_some() { xv.len() } else { 0 }];
    let go = [T::ONE];
    let fb = a.grad_out.is_some();
    let ctx = || format!("{} / {}", x.path.display(), t.path.display());
    let float_target = t.dtype.is_float();
    if float_target != a.soft_label {
        bail!(
            "{}: {} target with{} --soft-label (soft labels are float [N, C, ...]; class indices integers)",
            t.path.display(),
            if float_target { "a float" } else { "an integer" },
            if a.soft_label { "" } else { "out" },
        );
    }
    let out = if a.soft_label {
        let tv = t.read_all::<T>()?;
        let tview = View::new(&tv, &t.shape)?;
        match a.loss {
            Name::Dice => eval(&f.dice()?, xview, tview, fb.then_some((&go[..], &mut g[..]))),
            _ => eval(&f.tversky()?, xview, tview, fb.then_some((&go[..], &mut g[..]))),
        }
    } else {
        let tv = t.read_all::<i64>()?;
        let tview = View::new(&tv, &t.shape)?;
        let grad = fb.then_some((&go[..], &mut g[..]));
        let include_background = !a.no_background;
        match a.loss {
            Name::Dice => eval::<T, i64>(&f.dice()?, xview, tview, grad),
            Name::Tversky => eval::<T, i64>(&f.tversky()?, xview, tview, grad),
            Name::GeneralizedDice => {
                let l = GeneralizedDiceLoss::new(GeneralizedDiceOptions {
                    activation: f.act(Act::Softmax),
                    include_background,
                    batch: a.batch,
                    ignore_index: a.ignore_index,
                    reduction: a.reduction,
                    ..Default::default()
                })?;
                eval(&l, xview, tview, grad)
            }
            Name::DiceFocal => {
                let l = DiceFocalLoss::new(DiceFocalOptions {
                    activation: f.act(Act::Softmax),
                    include_background,
                    batch: a.batch,
                    gamma: a.gamma.unwrap_or(2.0),
                    alpha: a.alpha,
                    weight: f.class_weight(),
                    lambda_dice: a.lambda_dice.unwrap_or(1.0),
                    lambda_focal: a.lambda_focal.unwrap_or(1.0),
                    ignore_index: a.ignore_index,
                    reduction: a.reduction,
                    ..Default::default()
                })?;
                eval(&l, xview, tview, grad)
            }
            Name::DiceCe => {
                let l = DiceCeLoss::new(DiceCeOptions {
                    activation: f.act(Act::Softmax),
                    include_background,
                    batch: a.batch,
                    weight: f.weight.clone(),
                    lambda_dice: a.lambda_dice.unwrap_or(1.0),
                    lambda_ce: a.lambda_ce.unwrap_or(1.0),
                    label_smoothing: a.label_smoothing.unwrap_or(0.0),
                    ignore_index: a.ignore_index,
                    reduction: a.reduction,
                    ..Default::default()
                })?;
                eval(&l, xview, tview, grad)
            }
            _ => {
                let l = FocalLoss::new(FocalOptions {
                    include_background,
                    gamma: a.gamma.unwrap_or(2.0),
                    alpha: a.alpha.map_or(FocalAlpha::None, FocalAlpha::Scalar),
                    weight: f.class_weight(),
                    activation: f.act(Act::Sigmoid),
                    ignore_index: a.ignore_index,
                    reduction: a.reduction,
                })?;
                eval(&l, xview, tview, grad)
            }
        }
    }
    .with_context(ctx)?;
    let mut grad = GradOut::new(&a.grad_out, &x.shape, x.dtype)?;
    grad.write(&g)?;
    grad.commit()?;
    Ok(Report::whole(&out))
}
