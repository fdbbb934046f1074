//! Label masks from files: PNG (8- and 16-bit grayscale, palette, RGB through a colour map),
//! `.npy` arrays of u8, u16, i32 or i64, NIfTI volumes (`.nii`, `.nii.gz`; see [`crate::nifti`])
//! and TIFF images (`.tif`, `.tiff`; see [`crate::tif`]).

use crate::npy::{self, Dtype};
use anyhow::{bail, ensure, Context, Result};
use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::Path;
use xent::weights::ClassCounts;
use xent::Error;

/// Decoded labels, in the type they were stored in.
pub enum Labels {
    U8(Vec<u8>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

/// One mask file: `images` label maps of `depth x height x width` (`depth` is 1 but for
/// volumes), stored with the width varying fastest.
pub struct Mask {
    pub labels: Labels,
    pub images: usize,
    pub height: usize,
    pub width: usize,
    pub depth: usize,
}

/// File names xent reads as masks, by their (lower-case) endings.
pub const EXTENSIONS: [&str; 6] = [".png", ".npy", ".nii", ".nii.gz", ".tif", ".tiff"];

/// The ending of `path` among [`EXTENSIONS`], ignoring case.
pub fn extension(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    EXTENSIONS.into_iter().filter(|e| name.ends_with(e)).max_by_key(|e| e.len())
}

/// How masks are read.
pub struct Reader {
    /// RGB colour -> class, for RGB masks.
    pub colormap: Option<HashMap<[u8; 3], u16>>,
    /// The most pixels (elements) one file may claim; larger files are refused before decoding.
    pub max_pixels: usize,
}

/// Reads a colour map: a JSON list of `[r, g, b]`, one per class.
pub fn read_colormap(path: &Path) -> Result<HashMap<[u8; 3], u16>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read colour map", path.display()))?;
    let colours: Vec<[u8; 3]> = serde_json::from_str(&text)
        .with_context(|| format!("{}: a colour map is a JSON list of [r, g, b], one per class", path.display()))?;
    let mut map = HashMap::new();
    for (class, c) in colours.into_iter().enumerate() {
        ensure!(class <= u16::MAX as usize, "{}: too many classes", path.display());
        if map.insert(c, class as u16).is_some() {
            bail!("{}: colour {c:?} is given to two classes", path.display());
        }
    }
    Ok(map)
}

impl Reader {
    /// Reads the mask at `path` (by its extension).
    pub fn read(&self, path: &Path) -> Result<Mask> {
        match extension(path) {
            Some(".png") => self.read_png(path),
            Some(".npy") => self.read_npy(path),
            Some(".nii") => crate::nifti::read(path, false, self.max_pixels),
            Some(".nii.gz") => crate::nifti::read(path, true, self.max_pixels),
            Some(".tif" | ".tiff") => crate::tif::read(path, self.max_pixels),
            _ => bail!("not a mask file ({})", EXTENSIONS.join(", ")),
        }
    }

    fn read_png(&self, path: &Path) -> Result<Mask> {
        let file = std::fs::File::open(path).context("cannot open")?;
        let mut dec = png::Decoder::new(BufReader::new(file));
        dec.set_transformations(png::Transformations::IDENTITY);
        dec.set_limits(png::Limits { bytes: self.max_pixels.saturating_mul(8) });
        let mut reader = dec.read_info().context("corrupt or truncated PNG")?;
        let (w, h) = (reader.info().width as usize, reader.info().height as usize);
        ensure!(
            w.saturating_mul(h) <= self.max_pixels,
            "PNG claims {w} x {h} pixels, over the limit of {} (--max-pixels)",
            self.max_pixels
        );
        let mut buf = vec![0u8; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut buf).context("corrupt or truncated PNG")?;
        let line = frame.line_size;
        let rows = buf[..frame.buffer_size()].chunks_exact(line);
        use png::{BitDepth as B, ColorType as C};
        let labels = match (frame.color_type, frame.bit_depth) {
            (C::Grayscale | C::Indexed, B::Eight) => Labels::U8(rows.flat_map(|r| r[..w].iter().copied()).collect()),
            (C::Grayscale | C::Indexed, depth @ (B::One | B::Two | B::Four)) => {
                let bits = depth as usize;
                let mask = (1u8 << bits) - 1;
                Labels::U8(
                    rows.flat_map(|r| (0..w).map(move |x| (r[x * bits / 8] >> (8 - bits - (x * bits) % 8)) & mask))
                        .collect(),
                )
            }
            (C::Grayscale, B::Sixteen) => Labels::U16(
                rows.flat_map(|r| r[..2 * w].chunks_exact(2).map(|b| u16::from_be_bytes([b[0], b[1]]))).collect(),
            ),
            (C::Rgb | C::Rgba, B::Eight) => {
                let map = self.colormap.as_ref().context("RGB mask: give --colormap FILE to map colours to classes")?;
                let ch = if frame.color_type == C::Rgb { 3 } else { 4 };
                let mut out = Vec::with_capacity(w * h);
                for (y, r) in rows.enumerate() {
                    for (x, px) in r[..ch * w].chunks_exact(ch).enumerate() {
                        let c = [px[0], px[1], px[2]];
                        let class = map
                            .get(&c)
                            .with_context(|| format!("colour {c:?} at row {y}, column {x} is not in the colour map"))?;
                        out.push(*class);
                    }
                }
                Labels::U16(out)
            }
            (c, d) => bail!("unsupported PNG colour type {c:?} with bit depth {d:?}"),
        };
        Ok(Mask { labels, images: 1, height: h, width: w, depth: 1 })
    }

    fn read_npy(&self, path: &Path) -> Result<Mask> {
        let file = std::fs::File::open(path).context("cannot open")?;
        let len = file.metadata().context("cannot stat")?.len();
        let mut r = BufReader::new(file);
        let header = npy::read_header(&mut r)?;
        let n = header.elements(self.max_pixels)?;
        let need = (header.offset + n * header.dtype.size()) as u64;
        ensure!(
            len == need,
            "file has {len} bytes, its header {:?} {:?} needs {need}",
            header.dtype.name(),
            header.shape
        );
        let mut bytes = vec![0u8; n * header.dtype.size()];
        r.read_exact(&mut bytes).context("truncated data")?;
        let bytes = header.to_native(bytes);
        let labels = match header.dtype {
            Dtype::U8 => Labels::U8(bytes),
            Dtype::U16 => Labels::U16(npy::decode(&bytes, u16::from_le_bytes)),
            Dtype::I32 => Labels::I32(npy::decode(&bytes, i32::from_le_bytes)),
            Dtype::I64 => Labels::I64(npy::decode(&bytes, i64::from_le_bytes)),
            d => bail!("label arrays must be integers (uint8, uint16, int32, int64), not {}", d.name()),
        };
        // [H, W] (or [W], or a scalar) is one image; [N, H, W, ...] is N images.
        let s = &header.shape;
        let (images, height, width) = match s.len() {
            0 => (1, 1, 1),
            1 => (1, 1, s[0]),
            2 => (1, s[0], s[1]),
            _ => (s[0], s[1], s[2..].iter().product()),
        };
        Ok(Mask { labels, images, height, width, depth: 1 })
    }
}

impl Mask {
    /// Counts the mask's labels; an out-of-range label is reported with its image, row and column.
    pub fn count(&self, num_classes: usize, ignore_index: Option<i64>) -> Result<ClassCounts> {
        let per = self.depth * self.height * self.width;
        let shape = [self.images, per];
        let r = match &self.labels {
            Labels::U8(v) => ClassCounts::from_images(xent::View::new(v, &shape)?, num_classes, ignore_index),
            Labels::U16(v) => ClassCounts::from_images(xent::View::new(v, &shape)?, num_classes, ignore_index),
            Labels::I32(v) => ClassCounts::from_images(xent::View::new(v, &shape)?, num_classes, ignore_index),
            Labels::I64(v) => ClassCounts::from_images(xent::View::new(v, &shape)?, num_classes, ignore_index),
        };
        r.map_err(|e| match e {
            Error::TargetOutOfRange { index, value, classes, .. } => {
                let (img, at) = (index / per.max(1), index % per.max(1));
                let (w, plane) = (self.width.max(1), (self.width * self.height).max(1));
                let image = if self.images > 1 { format!("image {img}, ") } else { String::new() };
                let place = if self.depth > 1 {
                    format!("{image}voxel ({}, {}, {})", at % w, at % plane / w, at / plane)
                } else {
                    format!("{image}row {}, column {}", at / w, at % w)
                };
                anyhow::anyhow!(
                    "label {value} at {place} is out of range for {classes} classes (ignore index {})",
                    ignore_index.map_or("none".into(), |i| i.to_string())
                )
            }
            e => e.into(),
        })
    }
}
