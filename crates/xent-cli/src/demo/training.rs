//! Training one network per loss, and scoring it on held-out images.

use super::data::{Data, Rng};
use super::network::{predict, Fcn};
use crate::progress;
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::Optimizer;
use xent::weights::{batch_weights, AbsentClasses, ClassCounts, Scheme};
use xent::*;

/// Foreground IoU, precision, recall, F1, background accuracy.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Scores {
    pub(super) iou: f64,
    pub(super) precision: f64,
    pub(super) recall: f64,
    pub(super) f1: f64,
    pub(super) background: f64,
}

pub(super) fn scores(pred: &[u8], truth: &[u8]) -> Scores {
    let (mut tp, mut fp, mut fneg, mut tn) = (0f64, 0f64, 0f64, 0f64);
    for (&p, &t) in pred.iter().zip(truth) {
        match (p, t) {
            (1, 1) => tp += 1.0,
            (1, _) => fp += 1.0,
            (_, 1) => fneg += 1.0,
            _ => tn += 1.0,
        }
    }
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let (precision, recall) = (div(tp, tp + fp), div(tp, tp + fneg));
    Scores {
        iou: div(tp, tp + fp + fneg),
        precision,
        recall,
        f1: div(2.0 * precision * recall, precision + recall),
        background: div(tn, tn + fp),
    }
}

pub(super) struct Trained {
    pub(super) name: &'static str,
    pub(super) colour: [u8; 3],
    pub(super) scores: Scores,
    pub(super) curve: Vec<f64>,
    pub(super) pred: Vec<u8>,
}

/// Trains one network with loss `name` and scores it on `test` after every epoch; off a
/// terminal, reports each epoch in a line (seconds since `start`).
pub(super) fn train(
    name: &'static str,
    colour: [u8; 3],
    tr: &Data,
    test: &Data,
    epochs: usize,
    seed: u64,
    start: std::time::Instant,
) -> Result<Trained> {
    let dev = Device::Cpu;
    let mut rng = Rng::new(seed);
    let binary = name == "bce_pos_weight";
    let net = Fcn::new(if binary { 1 } else { 2 }, &mut rng, &dev)?;
    let mut opt = candle_nn::AdamW::new(
        net.vars.clone(),
        candle_nn::ParamsAdamW { lr: 5e-3, weight_decay: 0.0, ..Default::default() },
    )?;
    let s = tr.side;
    let counts = ClassCounts::from_images(View::new(&tr.masks, &[tr.n, s * s])?, 2, None)?;
    let dataset_w = counts.weights(Scheme::InverseFrequency, AbsentClasses::Zero)?;
    let pos_weight = counts.pixels()[0] as f64 / counts.pixels()[1].max(1) as f64;
    let bar = progress::bar((epochs * tr.n) as u64, name);
    let mut curve = Vec::new();
    let mut order: Vec<usize> = (0..tr.n).collect();
    for epoch in 1..=epochs {
        let (mut total, mut batches) = (0.0, 0);
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        for batch in order.chunks(16) {
            let (mut xs, mut ys) = (Vec::new(), Vec::new());
            for &i in batch {
                xs.extend_from_slice(tr.image(i));
                ys.extend_from_slice(tr.mask(i));
            }
            let b = batch.len();
            let x = Tensor::from_vec(xs, (b, 1, s, s), &dev)?;
            let logits = net.forward(&x)?;
            let y = Tensor::from_vec(ys.clone(), (b, s, s), &dev)?;
            let ce = |w: Option<Vec<f64>>| CrossEntropyOptions { weight: w, ..Default::default() };
            let loss = match name {
                "ce" => xent_candle::cross_entropy(&logits, &y, &ce(None))?,
                "ce_batch_inverse_freq" => {
                    let w = batch_weights(
                        View::new(&ys, &[b, s * s])?,
                        2,
                        None,
                        Scheme::InverseFrequency,
                        AbsentClasses::Zero,
                    )?;
                    xent_candle::cross_entropy(&logits, &y, &ce(Some(w)))?
                }
                "ce_dataset_weights" => xent_candle::cross_entropy(&logits, &y, &ce(Some(dataset_w.clone())))?,
                "bce_pos_weight" => {
                    let opts = BceWithLogitsOptions {
                        pos_weight: Some(xent::WeightTensor::new(vec![pos_weight], vec![1])?),
                        ..Default::default()
                    };
                    xent_candle::binary_cross_entropy_with_logits(
                        &logits,
                        &y.to_dtype(DType::F32)?.unsqueeze(1)?,
                        &opts,
                    )?
                }
                "focal" => xent_candle::focal_loss(
                    &logits,
                    &y,
                    &FocalOptions { activation: xent::Activation::Softmax, gamma: 2.0, ..Default::default() },
                )?,
                "dice_ce" => {
                    // Dice of the foreground alone: the background's Dice is near 1 anyway.
                    xent_candle::dice_ce(
                        &logits,
                        &y,
                        &DiceCeOptions { include_background: false, ..Default::default() },
                    )?
                }
                other => bail!("unknown loss {other:?}"),
            };
            opt.backward_step(&loss)?;
            total += f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?);
            batches += 1;
            bar.inc(b as u64);
        }
        let f1 = scores(&predict(&net, test, binary, &dev)?, &test.masks).f1;
        curve.push(f1);
        progress::line(&format!(
            "{name:<22} epoch {epoch}/{epochs}  training loss {:.4}  held-out F1 {f1:.3}  {:.1} s",
            total / batches.max(1) as f64,
            start.elapsed().as_secs_f64()
        ));
    }
    bar.finish_and_clear();
    let pred = predict(&net, test, binary, &dev)?;
    Ok(Trained { name, colour, scores: scores(&pred, &test.masks), curve, pred })
}
