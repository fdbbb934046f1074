#![no_main]
//! `.safetensors` files through the array reader, by name and alone.
mod readers;
use libfuzzer_sys::fuzz_target;
use readers::*;

fuzz_target!(|data: &[u8]| {
    let _ = arrays::safetensors_header(&mut &data[..], None);
    let p = scratch(data, "safetensors");
    let path = p.to_str().unwrap().to_string();
    for spec in [path.clone(), format!("{path}:x"), format!("{path}:logits")] {
        if let Ok(s) = arrays::open(&spec, 1 << 22) {
            let _ = s.read_all::<f64>();
            let _ = s.read_all::<i64>();
        }
    }
});
