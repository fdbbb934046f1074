//! The demo's pictures: the held-out F1 curves and the sample predictions.

use super::data::Data;
use super::training::Trained;
use crate::draw::Canvas;

/// Held-out foreground F1 (0 to 1, upwards) per epoch, one colour per loss; the legend strip at
/// the bottom shows the colours in the table's order.
pub(super) fn curves(runs: &[Trained], epochs: usize) -> Canvas {
    let (w, h, m) = (480i64, 320i64, 30i64);
    let mut c = Canvas::new(w as usize, h as usize, [255, 255, 255]);
    for k in 0..=4 {
        let y = h - m - (h - 2 * m) * k / 4;
        c.rect(m, y, w - 2 * m, 1, [225, 225, 225]);
    }
    c.rect(m, m, 1, h - 2 * m, [0, 0, 0]);
    c.rect(m, h - m, w - 2 * m, 1, [0, 0, 0]);
    let px = |e: usize, f: f64| {
        let x = m + (w - 2 * m) * (e as i64 + 1) / epochs.max(1) as i64;
        (x, h - m - ((h - 2 * m) as f64 * f) as i64)
    };
    for r in runs {
        let mut prev = (m, h - m);
        for (e, &f) in r.curve.iter().enumerate() {
            let p = px(e, f);
            c.line(prev, p, r.colour);
            prev = p;
        }
    }
    for (i, r) in runs.iter().enumerate() {
        c.rect(m + i as i64 * 40, h - 18, 30, 10, r.colour);
    }
    c
}

/// Rows of held-out samples: image, ground truth, then each loss's prediction.
pub(super) fn grid(runs: &[Trained], test: &Data) -> Canvas {
    let s = test.side;
    let (k, gap) = (2i64, 4i64);
    let cell = s as i64 * k + gap;
    let rows = 4.min(test.n);
    let mut c = Canvas::new(
        ((2 + runs.len()) as i64 * cell + gap) as usize,
        (rows as i64 * cell + gap + 14) as usize,
        [255, 255, 255],
    );
    for (j, r) in runs.iter().enumerate() {
        c.rect(gap + (2 + j as i64) * cell, 4, s as i64 * k, 8, r.colour);
    }
    for i in 0..rows {
        let y = 14 + gap + i as i64 * cell;
        c.gray(gap, y, test.image(i), s, (-0.5, 1.5), k);
        let as_f32 = |m: &[u8]| m.iter().map(|&v| v as f32).collect::<Vec<_>>();
        c.gray(gap + cell, y, &as_f32(test.mask(i)), s, (0.0, 1.0), k);
        for (j, r) in runs.iter().enumerate() {
            c.gray(gap + (2 + j as i64) * cell, y, &as_f32(&r.pred[i * s * s..(i + 1) * s * s]), s, (0.0, 1.0), k);
        }
    }
    c
}
