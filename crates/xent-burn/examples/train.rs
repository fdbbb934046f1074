//! Trains a small convolutional network with xent's focal loss through burn (Flex backend, with
//! autodiff), on the demo's synthetic segmentation data (thin lines and dots, about 3% of the
//! pixels, among clutter), and prints the held-out foreground F1 after each epoch.
//!
//! `cargo run --release -p xent-burn --example train`

use burn_tensor::module::conv2d;
use burn_tensor::ops::ConvOptions;
use burn_tensor::{activation::relu, Device, Int, Tensor, TensorData};
use xent::testing::{lines_and_dots, Rng, Segmentation};
use xent::{Activation, FocalOptions};
use xent_burn::FocalLossConfig;

/// One convolution: weight `[out, in, k, k]`, bias `[out]`, its dilation.
struct Conv {
    weight: Tensor<4>,
    bias: Tensor<1>,
    dilation: usize,
}

/// A small fully convolutional network: 3x3 convolutions (the middle one dilated, to see
/// further along a line) with ReLU, and a 1x1 head to two classes. The same as xent-candle's
/// example.
struct Net {
    layers: Vec<Conv>,
}

impl Net {
    fn new(rng: &mut Rng, dev: &Device) -> Net {
        let mut conv = |cin: usize, cout: usize, k: usize, dilation: usize| {
            // PyTorch's default initialisation: uniform in +-1/sqrt(fan_in).
            let bound = 1.0 / ((cin * k * k) as f64).sqrt();
            let w: Vec<f32> = (0..cout * cin * k * k).map(|_| rng.range(-bound, bound) as f32).collect();
            let b: Vec<f32> = (0..cout).map(|_| rng.range(-bound, bound) as f32).collect();
            Conv {
                weight: Tensor::<4>::from_data(TensorData::new(w, [cout, cin, k, k]), dev).require_grad(),
                bias: Tensor::<1>::from_data(TensorData::new(b, [cout]), dev).require_grad(),
                dilation,
            }
        };
        Net { layers: vec![conv(1, 16, 3, 1), conv(16, 16, 3, 2), conv(16, 16, 3, 1), conv(16, 2, 1, 1)] }
    }

    fn logits(&self, x: Tensor<4>) -> Tensor<4> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |h, (i, l)| {
            let k = l.weight.dims()[2];
            let pad = l.dilation * (k / 2);
            let h = conv2d(
                h,
                l.weight.clone(),
                Some(l.bias.clone()),
                ConvOptions::new([1, 1], [pad, pad], [l.dilation; 2], 1),
            );
            if i < last {
                relu(h)
            } else {
                h
            }
        })
    }
}

/// Adam (PyTorch's defaults but the learning rate) over the network's tensors.
struct Adam {
    lr: f64,
    t: i32,
    moments: Vec<(Tensor<4>, Tensor<4>, Tensor<1>, Tensor<1>)>,
}

impl Adam {
    fn new(net: &Net, lr: f64) -> Adam {
        let moments = net
            .layers
            .iter()
            .map(|l| {
                let (w, b) = (l.weight.clone().inner(), l.bias.clone().inner());
                (w.zeros_like(), w.zeros_like(), b.zeros_like(), b.zeros_like())
            })
            .collect();
        Adam { lr, t: 0, moments }
    }

    fn step(&mut self, net: &mut Net, loss: &Tensor<1>) {
        let grads = loss.backward();
        self.t += 1;
        let (b1, b2, eps): (f64, f64, f64) = (0.9, 0.999, 1e-8);
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        let lr = self.lr;
        fn update<const D: usize>(
            p: &Tensor<D>,
            g: Tensor<D>,
            m: &mut Tensor<D>,
            v: &mut Tensor<D>,
            k: (f64, f64, f64, f64, f64, f64),
        ) -> Tensor<D> {
            let (b1, b2, eps, c1, c2, lr) = k;
            *m = m.clone().mul_scalar(b1) + g.clone().mul_scalar(1.0 - b1);
            *v = v.clone().mul_scalar(b2) + (g.clone() * g).mul_scalar(1.0 - b2);
            let step = m.clone().div_scalar(c1) / (v.clone().div_scalar(c2).sqrt().add_scalar(eps));
            Tensor::from_inner(p.clone().inner() - step.mul_scalar(lr)).require_grad()
        }
        for (l, (mw, vw, mb, vb)) in net.layers.iter_mut().zip(&mut self.moments) {
            let k = (b1, b2, eps, c1, c2, lr);
            let gw = l.weight.grad(&grads).expect("every weight takes part in the loss");
            let gb = l.bias.grad(&grads).expect("every bias takes part in the loss");
            l.weight = update(&l.weight, gw, mw, vw, k);
            l.bias = update(&l.bias, gb, mb, vb, k);
        }
    }
}

/// Foreground F1 of the network on `data`.
fn f1(net: &Net, data: &Segmentation, dev: &Device) -> f64 {
    let s = data.side;
    let x = Tensor::<4>::from_data(TensorData::new(data.images.clone(), [data.n, 1, s, s]), dev);
    let z = net.logits(x);
    let [n, _, h, w] = z.dims();
    let fg = z.clone().slice([0..n, 1..2, 0..h, 0..w]) - z.slice([0..n, 0..1, 0..h, 0..w]);
    let fg: Vec<f32> = fg.into_data().convert::<f32>().try_to_vec().expect("f32 values");
    data.f1(&fg)
}

fn main() -> Result<(), xent_burn::Error> {
    let dev = Device::flex().autodiff();
    let mut rng = Rng::new(7);
    let (train, test) = (lines_and_dots(160, 64, &mut rng), lines_and_dots(64, 64, &mut rng));
    println!(
        "{} training and {} held-out images of 64x64, {:.1}% foreground",
        train.n,
        test.n,
        100.0 * train.foreground()
    );
    let mut net = Net::new(&mut rng, &dev);
    let mut adam = Adam::new(&net, 5e-3);
    // The focal loss with softmax over the two classes: easy background pixels weigh little.
    let focal = FocalLossConfig { options: FocalOptions { activation: Activation::Softmax, ..Default::default() } }
        .with_gamma(2.0)
        .init();
    let s = train.side;
    for epoch in 1..=8 {
        for start in (0..train.n).step_by(16) {
            let b = 16.min(train.n - start);
            let px = train.images[start * s * s..(start + b) * s * s].to_vec();
            let x = Tensor::<4>::from_data(TensorData::new(px, [b, 1, s, s]), &dev);
            let mask = train.masks[start * s * s..(start + b) * s * s].to_vec();
            let y = Tensor::<3, Int>::from_data(TensorData::new(mask, [b, s, s]), &dev);
            let loss = focal.forward(net.logits(x), y)?;
            adam.step(&mut net, &loss);
        }
        println!("epoch {epoch}: held-out foreground F1 {:.3}", f1(&net, &test, &dev));
    }
    Ok(())
}
