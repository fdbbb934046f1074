#![no_main]
//! PNG masks (any colour type and bit depth) decoded into labels and counted, with a colour map.
mod readers;
use libfuzzer_sys::fuzz_target;
use readers::*;

fuzz_target!(|data: &[u8]| {
    let p = scratch(data, "png");
    let colormap = [([0u8, 0, 0], 0u16), ([255, 255, 255], 1)].into_iter().collect();
    for cm in [None, Some(colormap)] {
        let r = masks::Reader { colormap: cm, max_pixels: 1 << 20 };
        if let Ok(m) = r.read(&p) {
            let _ = m.count(3, Some(255));
            let _ = m.count(0, None);
        }
    }
});
