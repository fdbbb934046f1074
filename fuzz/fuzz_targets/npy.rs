#![no_main]
//! `.npy` files through the array reader and the mask reader: any bytes give a value or an error.
mod readers;
use libfuzzer_sys::fuzz_target;
use readers::*;

fuzz_target!(|data: &[u8]| {
    let _ = npy::read_header(&mut &data[..]);
    let p = scratch(data, "npy");
    if let Ok(s) = arrays::open(p.to_str().unwrap(), 1 << 22) {
        let _ = s.read_all::<f32>();
        let _ = s.read_all::<i64>();
        if s.rows() > 1 {
            let _ = s.read_rows::<f64>(1, s.rows() - 1);
        }
    }
    let r = masks::Reader { colormap: None, max_pixels: 1 << 22 };
    if let Ok(m) = r.read(&p) {
        let _ = m.count(5, Some(255));
    }
});
