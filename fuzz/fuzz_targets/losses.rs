#![no_main]
//! Every loss entry point on arbitrary shapes, options and data (NaN, inf, huge values, empty
//! and zero-class dimensions, negative and out-of-range targets): a value or an error, no panic.
//! A few dimensions are large (16-64 classes, long inner runs), so that inputs fill whole tiles
//! of 128 lanes and reach the scratch tile and the AVX-512 transposes; once the input's bytes
//! run out, values come from a generator seeded by them, so each input stays small.
use libfuzzer_sys::fuzz_target;
use xent::weights::ClassCounts;
use xent::*;

struct Bytes<'a>(&'a [u8], xent::testing::Rng);
impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => self.1.next() as u8,
        }
    }
    fn f32(&mut self) -> f32 {
        if self.0.len() < 4 {
            return (self.1.uniform() * 40.0 - 20.0) as f32;
        }
        f32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// Mostly 0 to 5; sometimes 16 to 64 (classes that fill a scratch tile's rows and the
    /// transposes' blocks) or 100 to 355 (a run of positions longer than a tile).
    fn dim(&mut self) -> usize {
        match self.u8() % 10 {
            8 => 16 + (self.u8() % 49) as usize,
            9 => 100 + self.u8() as usize,
            d => (d % 6) as usize,
        }
    }
    fn option_f64(&mut self) -> f64 {
        match self.u8() % 6 {
            0 => f64::NAN,
            1 => -1.0,
            2 => 0.0,
            3 => 1.5,
            _ => self.u8() as f64 / 255.0,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let seed = data.iter().fold(0u64, |h, &v| h.wrapping_mul(31).wrapping_add(u64::from(v)));
    let mut b = Bytes(data, xent::testing::Rng::new(seed));
    let ndim = (b.u8() % 5) as usize;
    let shape: Vec<usize> = (0..ndim).map(|_| b.dim()).collect();
    let n: usize = shape.iter().product();
    if n > 1 << 14 {
        return;
    }
    let classes = shape.get(1).copied().unwrap_or(0) as i64;
    let x: Vec<f32> = (0..n).map(|_| b.f32()).collect();
    let y: Vec<f32> = (0..n).map(|_| b.f32()).collect();
    let tshape: Vec<usize> = if b.u8() % 4 == 0 {
        (0..(b.u8() % 3)).map(|_| (b.u8() % 4) as usize).collect()
    } else if ndim >= 2 {
        [&shape[..1], &shape[2..]].concat()
    } else {
        vec![]
    };
    let tn: usize = tshape.iter().product();
    let t: Vec<i64> = (0..tn).map(|_| b.u8() as i8 as i64 % (classes + 2).max(7)).collect();
    let red = [Reduction::None, Reduction::Mean, Reduction::Sum][(b.u8() % 3) as usize];
    let empty = if b.u8() % 2 == 0 { EmptyMean::Nan } else { EmptyMean::Zero };
    let wlen = if b.u8() % 2 == 0 { classes as usize } else { (b.u8() % 6) as usize };
    let weight: Option<Vec<f32>> = (b.u8() % 2 == 0).then(|| (0..wlen).map(|_| b.f32()).collect());
    let golen = if b.u8() % 2 == 0 { 1 } else { tn.max(n) };
    let go: Vec<f32> = (0..golen).map(|_| b.f32()).collect();
    let mut g = vec![0.0f32; if b.u8() % 8 == 0 { n + 1 } else { n }];
    let dim = (b.u8() % 7) as i64 - 3;
    let (o1, o2, o3) = (b.option_f64(), b.option_f64(), b.option_f64());
    let flag = b.u8();
    let (Ok(xv), Ok(yv), Ok(tv)) = (View::new(&x, &shape), View::new(&y, &shape), View::new(&t, &tshape)) else { return };
    let _ = softmax(xv, dim);
    let _ = log_softmax(xv, dim);
    let _ = softmax_backward_into(xv, yv, dim, &mut g);
    let _ = log_softmax_backward_into(xv, yv, dim, &mut g);
    // ignore_index 3 (refused with probability targets) or the default -100.
    let ce_ii = if flag & 1 != 0 { 3 } else { -100 };
    let ce = CrossEntropyLoss::new(CrossEntropyOptions { weight: weight.clone(), ignore_index: ce_ii, reduction: red, label_smoothing: o1, empty_mean: empty });
    if let Ok(l) = ce {
        let _ = l.forward(xv, tv);
        let _ = l.forward_backward(xv, tv, &go, &mut g);
        let _ = l.forward(xv, yv);
        let _ = l.forward_backward(xv, yv, &go, &mut g);
        let _ = l.denominator(&shape, tv);
    }
    if let Ok(l) = NllLoss::new(NllOptions { weight: weight.clone(), ignore_index: -1, reduction: red, empty_mean: empty }) {
        let _ = l.forward_backward(xv, tv, &go, &mut g);
    }
    let wt = weight.clone().and_then(|w| {
        let k = w.len();
        xent::WeightTensor::new(w, vec![k]).ok()
    });
    if let Ok(l) = BceLoss::new(BceOptions { weight: wt.clone(), reduction: red, empty_mean: empty }) {
        let _ = l.forward_backward(xv, yv, &go, &mut g);
    }
    if let Ok(l) = BceWithLogitsLoss::new(BceWithLogitsOptions { weight: wt.clone(), pos_weight: wt, reduction: red, empty_mean: empty }) {
        let _ = l.forward_backward(xv, yv, &go, &mut g);
    }
    if let Ok(l) = SigmoidFocalLoss::new(SigmoidFocalOptions { alpha: o1, gamma: o2, reduction: red, empty_mean: empty }) {
        let _ = l.forward_backward(xv, yv, &go, &mut g);
    }
    let act = [Activation::Softmax, Activation::Sigmoid, Activation::Identity][(flag % 3) as usize];
    let ii = (flag & 8 != 0).then_some(if flag & 1 != 0 { 3 } else { 255 });
    // A class weight: one number for all classes, or a list.
    let cw: Option<ClassWeight<f32>> = match (&weight, flag & 4 != 0) {
        (Some(w), true) if !w.is_empty() => Some(ClassWeight::Uniform(w[0])),
        (w, _) => w.clone().map(ClassWeight::PerClass),
    };
    let dice = DiceLoss::new(DiceOptions {
        activation: act,
        include_background: flag & 16 != 0,
        squared_pred: flag & 32 != 0,
        jaccard: flag & 64 != 0,
        batch: flag & 128 != 0,
        smooth_nr: o2,
        smooth_dr: o3,
        weight: cw.clone(),
        ignore_index: ii,
        reduction: red,
    });
    if let Ok(l) = dice {
        let _ = l.forward_backward(xv, tv, &go, &mut g);
        // Soft labels: the input's shape, values anywhere (errors outside [0, 1]).
        let _ = l.forward_backward(xv, yv, &go, &mut g);
    }
    if let Ok(l) = GeneralizedDiceLoss::new(GeneralizedDiceOptions { activation: act, ignore_index: ii, reduction: red, batch: flag & 4 != 0, ..Default::default() }) {
        let _ = l.forward_backward(xv, tv, &go, &mut g);
    }
    if let Ok(l) = TverskyLoss::new(TverskyOptions { activation: act, alpha: o1, beta: o2, ignore_index: ii, reduction: red, batch: flag & 128 != 0, ..Default::default() }) {
        let _ = l.forward_backward(xv, tv, &go, &mut g);
        let _ = l.forward_backward(xv, yv, &go, &mut g);
    }
    let alpha = match flag % 3 {
        0 => FocalAlpha::None,
        1 => FocalAlpha::Scalar(o1),
        _ => FocalAlpha::PerClass(weight.clone().unwrap_or_default()),
    };
    let focal = FocalLoss::new(FocalOptions { include_background: flag & 16 != 0, gamma: o2, alpha, weight: cw.clone(), activation: if flag & 2 != 0 { Activation::Softmax } else { Activation::Sigmoid }, ignore_index: ii, reduction: red });
    if let Ok(l) = focal {
        let _ = l.forward_backward(xv, tv, &go, &mut g);
    }
    let dce = DiceCeLoss::new(DiceCeOptions {
        activation: act,
        include_background: flag & 16 != 0,
        weight: weight.clone(),
        lambda_dice: o1,
        lambda_ce: o3,
        label_smoothing: o2,
        ignore_index: ii,
        reduction: red,
        ..Default::default()
    });
    if let Ok(l) = dce {
        let _ = l.forward_backward(xv, tv, &go, &mut g);
    }
    let dfocal = DiceFocalLoss::new(DiceFocalOptions {
        activation: act,
        include_background: flag & 16 != 0,
        squared_pred: flag & 32 != 0,
        batch: flag & 128 != 0,
        gamma: o2,
        alpha: (flag & 2 != 0).then_some(o1),
        weight: cw,
        lambda_dice: o3,
        ignore_index: ii,
        reduction: red,
        ..Default::default()
    });
    if let Ok(l) = dfocal {
        let _ = l.forward_backward(xv, tv, &go, &mut g);
    }
    let _ = ClassCounts::from_images(tv, wlen, ii);
    // linear_cross_entropy: input [N, D] or [D], a weight [C, D'] (D' sometimes not D), a bias
    // [C] or of another length, the targets and class weights above (out of range, NaN), and
    // gradient buffers sometimes one too long; f32, then bf16.
    let (rows, feat, vocab) = (b.dim(), b.dim(), b.dim());
    let feat_w = if flag & 32 != 0 { b.dim() } else { feat };
    if rows * feat <= 1 << 14 && vocab * feat_w <= 1 << 14 {
        let xs: Vec<usize> = if flag & 64 != 0 { vec![feat] } else { vec![rows, feat] };
        let xl: Vec<f32> = (0..xs.iter().product::<usize>()).map(|_| b.f32()).collect();
        let wl: Vec<f32> = (0..vocab * feat_w).map(|_| b.f32()).collect();
        let bl: Vec<f32> = (0..if flag & 128 != 0 { vocab } else { (b.u8() % 4) as usize }).map(|_| b.f32()).collect();
        let (ws, bs) = ([vocab, feat_w], [bl.len()]);
        let pad = usize::from(b.u8() % 8 == 0);
        let lce = LinearCrossEntropy::new(LinearCrossEntropyOptions {
            weight: weight.clone(),
            ignore_index: (flag & 1 != 0).then_some(3),
            reduction: red,
            label_smoothing: o1,
            empty_mean: empty,
        });
        if let (Ok(l), Ok(xv), Ok(wv), Ok(bv)) = (lce, View::new(&xl, &xs), View::new(&wl, &ws), View::new(&bl, &bs)) {
            let bias = (flag & 16 != 0).then_some(bv);
            let linear = Linear { input: xv, weight: wv, bias };
            let (mut dx, mut dw, mut db) = (vec![0.0f32; xl.len() + pad], vec![0.0f32; wl.len()], vec![0.0f32; bl.len()]);
            let grads = LinearGrads { grad_output: &go, input: &mut dx, weight: &mut dw, bias: bias.map(|_| &mut db[..]) };
            let _ = l.evaluate(linear, tv, Some(grads));
            let _ = l.forward(linear, tv);
            let h = |v: &[f32]| v.iter().map(|&v| bf16::from_f32(v)).collect::<Vec<bf16>>();
            let (xh, wh, bh) = (h(&xl), h(&wl), h(&bl));
            if let (Ok(xv), Ok(wv), Ok(bv)) = (View::new(&xh, &xs), View::new(&wh, &ws), View::new(&bh, &bs)) {
                let linear = Linear { input: xv, weight: wv, bias: bias.map(|_| bv) };
                let (mut dx, mut dw, mut db) = (vec![bf16::ZERO; xh.len() + pad], vec![bf16::ZERO; wh.len()], vec![bf16::ZERO; bh.len()]);
                let grads = LinearGrads { grad_output: &go, input: &mut dx, weight: &mut dw, bias: bias.map(|_| &mut db[..]) };
                let _ = l.evaluate_half(linear, tv, Some(grads));
            }
        }
    }
    // Half-precision scores (and float targets) through the losses that take them, the maths in
    // f32: bf16 or f16, the same values rounded.
    macro_rules! half {
        ($h:ty) => {{
            let xh: Vec<$h> = x.iter().map(|&v| <$h>::from_f32(v)).collect();
            let yh: Vec<$h> = y.iter().map(|&v| <$h>::from_f32(v)).collect();
            let mut gh = vec![<$h>::ZERO; g.len()];
            let (Ok(xv), Ok(yhv)) = (View::new(&xh, &shape), View::new(&yh, &shape)) else { return };
            let _ = softmax(xv, dim);
            let _ = log_softmax(xv, dim);
            let _ = softmax_backward_into(yv, yv, dim, &mut gh);
            let _ = log_softmax_backward_into(yv, yv, dim, &mut gh);
            let ce = CrossEntropyLoss::new(CrossEntropyOptions { weight: weight.clone(), ignore_index: ce_ii, reduction: red, label_smoothing: o1, empty_mean: empty });
            if let Ok(l) = ce {
                let _ = l.forward_backward(xv, tv, &go, &mut gh);
                let _ = l.forward_backward(xv, yhv, &go, &mut gh);
            }
            if let Ok(l) = NllLoss::new(NllOptions { weight: weight.clone(), ignore_index: -1, reduction: red, empty_mean: empty }) {
                let _ = l.forward_backward(xv, tv, &go, &mut gh);
            }
            let wt = weight.clone().and_then(|w| {
                let k = w.len();
                xent::WeightTensor::new(w, vec![k]).ok()
            });
            if let Ok(l) = BceLoss::new(BceOptions { weight: wt.clone(), reduction: red, empty_mean: empty }) {
                let _ = l.forward_backward(xv, yhv, &go, &mut gh);
            }
            if let Ok(l) = BceWithLogitsLoss::new(BceWithLogitsOptions { weight: wt.clone(), pos_weight: wt, reduction: red, empty_mean: empty }) {
                let _ = l.forward_backward(xv, yhv, &go, &mut gh);
            }
            if let Ok(l) = SigmoidFocalLoss::new(SigmoidFocalOptions { alpha: o1, gamma: o2, reduction: red, empty_mean: empty }) {
                let _ = l.forward_backward(xv, yhv, &go, &mut gh);
            }
            if let Ok(l) = FocalLoss::new(FocalOptions { gamma: o2, activation: act, ignore_index: ii, reduction: red, ..Default::default() }) {
                let _ = l.forward_backward(xv, tv, &go, &mut gh);
            }
            if let Ok(l) = DiceFocalLoss::new(DiceFocalOptions { activation: act, gamma: o2, ignore_index: ii, reduction: red, ..Default::default() }) {
                let _ = l.forward_backward(xv, tv, &go, &mut gh);
            }
        }};
    }
    if flag & 2 != 0 {
        half!(bf16);
    } else {
        half!(f16);
    }
});
