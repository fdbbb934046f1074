//! `--loss linear-cross-entropy`: the features, the projection (and bias) read whole, the logits
//! never formed (the library works in chunks of rows); the three gradients written atomically.

use super::report::Report;
use super::stream::GradOut;
use super::{class_weights, Args};
use crate::arrays::{self, Element, Source};
use anyhow::{Context, Result};
use xent::*;

pub(super) fn linear_loss<T: Float + Element + LinearTarget<T>>(a: &Args, x: &Source, t: &Source) -> Result<Report>
where
    CrossEntropyLoss<T>: Loss<T, T>,
{
    let w = arrays::open(a.linear_weight.as_deref().unwrap_or_default(), a.max_elements)?;
    let b = a.linear_bias.as_deref().map(|p| arrays::open(p, a.max_elements)).transpose()?;
    let xv = x.read_all::<T>()?;
    let wv = w.read_all::<T>()?;
    let bv = b.as_ref().map(|b| b.read_all::<T>()).transpose()?;
    let linear = Linear {
        input: View::new(&xv, &x.shape)?,
        weight: View::new(&wv, &w.shape)?,
        bias: match (&b, &bv) {
            (Some(b), Some(bv)) => Some(View::new(bv, &b.shape)?),
            _ => None,
        },
    };
    let lce = LinearCrossEntropy::new(LinearCrossEntropyOptions {
        weight: class_weights::<T>(a)?,
        ignore_index: a.ignore_index,
        reduction: a.reduction,
        label_smoothing: a.label_smoothing.unwrap_or(0.0),
        ..Default::default()
    })?;
    let wants = a.grad_out.is_some() || a.linear_weight_grad_out.is_some() || a.linear_bias_grad_out.is_some();
    let sized = |want: bool, n: usize| vec![T::ZERO; if want { n } else { 0 }];
    let (mut gx, mut gw) = (sized(wants, xv.len()), sized(wants, wv.len()));
    let mut gb = bv.as_ref().filter(|_| wants).map(|b| vec![T::ZERO; b.len()]);
    let one = [T::ONE];
    let grads =
        wants.then(|| LinearGrads { grad_output: &one, input: &mut gx, weight: &mut gw, bias: gb.as_deref_mut() });
    let ctx = || format!("{} / {} / {}", x.path.display(), w.path.display(), t.path.display());
    let out = match t.dtype {
        d if d.is_float() => {
            let tv = t.read_all::<T>()?;
            lce.evaluate::<T>(linear, View::new(&tv, &t.shape)?, grads)
        }
        _ => {
            let tv = t.read_all::<i64>()?;
            lce.evaluate::<i64>(linear, View::new(&tv, &t.shape)?, grads)
        }
    }
    .with_context(ctx)?;
    let outputs = [(&a.grad_out, &x.shape, &gx), (&a.linear_weight_grad_out, &w.shape, &gw)];
    let bias_out = b.as_ref().zip(gb.as_ref()).map(|(b, g)| (&a.linear_bias_grad_out, &b.shape, g));
    if a.linear_bias_grad_out.is_some() && bias_out.is_none() {
        anyhow::bail!("--linear-bias-grad-out needs --linear-bias");
    }
    let mut files = Vec::new();
    for ((path, shape, g), dtype) in
        outputs.into_iter().chain(bias_out).zip([x.dtype, w.dtype, b.as_ref().map_or(x.dtype, |b| b.dtype)])
    {
        let mut f = GradOut::new(path, shape, dtype)?;
        f.write(g)?;
        files.push(f);
    }
    for f in files {
        f.commit()?;
    }
    Ok(Report::whole(&out))
}
