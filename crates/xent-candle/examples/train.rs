//! Trains a small convolutional network with xent's focal loss through candle, on the demo's
//! synthetic segmentation data (thin lines and dots, about 3% of the pixels, among clutter), and
//! prints the held-out foreground F1 after each epoch.
//!
//! `cargo run --release -p xent-candle --example train`

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Optimizer, VarBuilder, VarMap};
use xent::testing::{lines_and_dots, Rng, Segmentation};
use xent::{Activation, FocalOptions};

/// A small fully convolutional network: 3x3 convolutions (the middle one dilated, to see
/// further along a line) with ReLU, and a 1x1 head to two classes.
struct Net {
    layers: Vec<Conv2d>,
}

impl Net {
    fn new(vb: VarBuilder<'_>) -> candle_core::Result<Net> {
        let conv = |cin, cout, k, dilation, name: &str| {
            let cfg = Conv2dConfig { padding: dilation * (k / 2), dilation, ..Default::default() };
            candle_nn::conv2d(cin, cout, k, cfg, vb.pp(name))
        };
        let layers = vec![
            conv(1, 16, 3, 1, "c1")?,
            conv(16, 16, 3, 2, "c2")?,
            conv(16, 16, 3, 1, "c3")?,
            conv(16, 2, 1, 1, "head")?,
        ];
        Ok(Net { layers })
    }

    fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().try_fold(x.clone(), |h, (i, l)| {
            let h = l.forward(&h)?;
            if i < last {
                h.relu()
            } else {
                Ok(h)
            }
        })
    }
}

/// Foreground F1 of the network on `data`.
fn f1(net: &Net, data: &Segmentation, dev: &Device) -> candle_core::Result<f64> {
    let s = data.side;
    let x = Tensor::from_slice(&data.images, (data.n, 1, s, s), dev)?;
    let z = net.logits(&x)?;
    let fg: Vec<f32> = (z.narrow(1, 1, 1)? - z.narrow(1, 0, 1)?)?.flatten_all()?.to_vec1()?;
    Ok(data.f1(&fg))
}

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    let mut rng = Rng::new(7);
    let (train, test) = (lines_and_dots(160, 64, &mut rng), lines_and_dots(64, 64, &mut rng));
    println!(
        "{} training and {} held-out images of 64x64, {:.1}% foreground",
        train.n,
        test.n,
        100.0 * train.foreground()
    );
    let varmap = VarMap::new();
    let net = Net::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev))?;
    let params = candle_nn::ParamsAdamW { lr: 5e-3, weight_decay: 0.0, ..Default::default() };
    let mut opt = candle_nn::AdamW::new(varmap.all_vars(), params)?;
    // The focal loss with softmax over the two classes: easy background pixels weigh little.
    let focal = FocalOptions { activation: Activation::Softmax, gamma: 2.0, ..Default::default() };
    let s = train.side;
    for epoch in 1..=8 {
        for start in (0..train.n).step_by(16) {
            let b = 16.min(train.n - start);
            let x = Tensor::from_slice(&train.images[start * s * s..(start + b) * s * s], (b, 1, s, s), &dev)?;
            let y = Tensor::from_slice(&train.masks[start * s * s..(start + b) * s * s], (b, s, s), &dev)?;
            let loss = xent_candle::focal_loss(&net.logits(&x)?, &y, &focal)?;
            opt.backward_step(&loss)?;
        }
        println!("epoch {epoch}: held-out foreground F1 {:.3}", f1(&net, &test, &dev)?);
    }
    Ok(())
}
