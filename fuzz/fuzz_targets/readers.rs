// The binary's file readers, compiled into the fuzz targets as they are (without the rest of
// the CLI, which pulls in candle).
#[path = "../../crates/xent-cli/src/arrays.rs"]
pub mod arrays;
#[path = "../../crates/xent-cli/src/masks.rs"]
pub mod masks;
#[path = "../../crates/xent-cli/src/nifti.rs"]
pub mod nifti;
#[path = "../../crates/xent-cli/src/npy.rs"]
pub mod npy;
#[path = "../../crates/xent-cli/src/tif.rs"]
pub mod tif;

/// Writes `data` to a per-process scratch file with extension `ext`, returns its path.
pub fn scratch(data: &[u8], ext: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("xent-fuzz-{}.{ext}", std::process::id()));
    std::fs::write(&p, data).unwrap();
    p
}
