#![no_main]
//! TIFF masks (strips, tiles, every compression, pages) decoded into labels and counted: any
//! bytes give labels or an error, within the pixel limit.
mod readers;
use libfuzzer_sys::fuzz_target;
use readers::*;

fuzz_target!(|data: &[u8]| {
    let p = scratch(data, "tif");
    let r = masks::Reader { colormap: None, max_pixels: 1 << 20 };
    if let Ok(m) = r.read(&p) {
        let _ = m.count(5, Some(255));
    }
});
