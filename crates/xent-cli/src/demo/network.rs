//! The small fully convolutional network every loss trains, and its predictions.

use super::conv::Conv;
use super::data::{uniform, Data, Rng};
use anyhow::Result;
use candle_core::{DType, Device, Tensor, Var};

/// The network: three 3x3 convolutions (the middle one dilated) with ReLU, and a 1x1 head.
pub(super) struct Fcn {
    /// Each layer's convolution, kernel and bias `[1, Cout, 1, 1]`.
    layers: Vec<(Conv, Tensor, Tensor)>,
    pub(super) vars: Vec<Var>,
}

impl Fcn {
    pub(super) fn new(out: usize, rng: &mut Rng, dev: &Device) -> Result<Fcn> {
        let spec = [(1, 12, 3, 1), (12, 16, 3, 2), (16, 16, 3, 1), (16, out, 1, 1)];
        let (mut layers, mut vars) = (Vec::new(), Vec::new());
        for (cin, cout, k, dil) in spec {
            let bound = (6.0 / (cin * k * k) as f32).sqrt();
            let w: Vec<f32> = (0..cout * cin * k * k).map(|_| (uniform(rng) * 2.0 - 1.0) * bound).collect();
            let w = Var::from_tensor(&Tensor::from_vec(w, (cout, cin, k, k), dev)?)?;
            let b = Var::zeros((1, cout, 1, 1), DType::F32, dev)?;
            let conv = Conv { pad: dil * (k / 2), dilation: dil };
            layers.push((conv, w.as_tensor().clone(), b.as_tensor().clone()));
            vars.extend([w, b]);
        }
        Ok(Fcn { layers, vars })
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, (conv, w, b)) in self.layers.iter().enumerate() {
            h = h.apply_op2(w, *conv)?.broadcast_add(b)?;
            if i + 1 < self.layers.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }
}

/// The per-pixel predictions of a model (1 = foreground).
pub(super) fn predict(net: &Fcn, data: &Data, binary_head: bool, dev: &Device) -> Result<Vec<u8>> {
    let s = data.side;
    let mut out = Vec::with_capacity(data.masks.len());
    for start in (0..data.n).step_by(32) {
        let m = 32.min(data.n - start);
        let x = Tensor::from_slice(&data.images[start * s * s..(start + m) * s * s], (m, 1, s, s), dev)?;
        let logits = net.forward(&x)?;
        let fg: Vec<f32> = if binary_head {
            logits.flatten_all()?.to_vec1()?
        } else {
            (logits.narrow(1, 1, 1)? - logits.narrow(1, 0, 1)?)?.flatten_all()?.to_vec1()?
        };
        out.extend(fg.iter().map(|&v| u8::from(v > 0.0)));
    }
    Ok(out)
}
