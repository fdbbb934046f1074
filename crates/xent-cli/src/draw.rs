//! The pictures' plumbing: a bundled font for plotters (DejaVu Sans, so text renders offline and
//! the same everywhere), and RGB buffers written as PNG.

use anyhow::{anyhow, Result};
use std::path::Path;

/// Registers the bundled font as plotters' `sans-serif`, once.
pub fn fonts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font, shipped by the `dejavu` crate.
        let _ =
            plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, dejavu::sans::regular());
    });
}

/// A plotters error as an `anyhow` one.
pub fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing: {e}")
}

/// An RGB buffer `w x h` as PNG bytes.
pub fn png_bytes(rgb: &[u8], w: usize, h: usize) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()?.write_image_data(rgb)?;
    }
    Ok(bytes)
}

/// Writes PNG bytes, atomically.
pub fn save(path: &Path, png: &[u8]) -> Result<()> {
    crate::atomic::write(path, png)
}
