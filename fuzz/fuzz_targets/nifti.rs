#![no_main]
//! NIfTI-1/2 volumes, `.nii` and `.nii.gz`, decoded into labels and counted: any bytes give
//! labels or an error, within the voxel limit.
mod readers;
use libfuzzer_sys::fuzz_target;
use readers::*;

fuzz_target!(|data: &[u8]| {
    for ext in ["nii", "nii.gz"] {
        let p = scratch(data, ext);
        let r = masks::Reader { colormap: None, max_pixels: 1 << 20 };
        if let Ok(m) = r.read(&p) {
            let _ = m.count(5, Some(255));
        }
    }
});
