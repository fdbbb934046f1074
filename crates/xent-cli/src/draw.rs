//! Minimal raster drawing for the demo's pictures (no fonts: colours carry the legend).

use anyhow::Result;
use std::path::Path;

/// An RGB canvas.
pub struct Canvas {
    pub w: usize,
    pub h: usize,
    px: Vec<[u8; 3]>,
}

impl Canvas {
    pub fn new(w: usize, h: usize, bg: [u8; 3]) -> Canvas {
        Canvas { w, h, px: vec![bg; w * h] }
    }

    pub fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            self.px[y as usize * self.w + x as usize] = c;
        }
    }

    pub fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: [u8; 3]) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy, c);
            }
        }
    }

    /// A line two pixels wide (Bresenham, thickened).
    pub fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3]) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.rect(x, y, 2, 2, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Draws a grayscale image (values mapped from `[lo, hi]`) at `(x, y)`, scaled by `k`.
    pub fn gray(&mut self, x: i64, y: i64, img: &[f32], side: usize, (lo, hi): (f32, f32), k: i64) {
        for (i, &v) in img.iter().enumerate() {
            let g = (((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0) as u8;
            self.rect(x + (i % side) as i64 * k, y + (i / side) as i64 * k, k, k, [g, g, g]);
        }
    }

    /// Writes the canvas as a PNG, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut bytes, self.w as u32, self.h as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut wr = enc.write_header()?;
            let data: Vec<u8> = self.px.iter().flat_map(|p| p.iter().copied()).collect();
            wr.write_image_data(&data)?;
        }
        crate::atomic::write(path, &bytes)
    }
}
