//! Fixtures for the end-to-end tests: mask files written the way other tools write them.
#![allow(dead_code)] // reason: each test binary uses a different part

use std::path::Path;
use std::process::{Command, Output};

/// Runs the built `xent` with `args`.
pub fn xent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xent")).args(args).output().expect("xent runs")
}

/// Asserts a failed run: exit code 2, a one-line error naming `needle`, no panic.
pub fn assert_fails(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit code; stderr: {err}");
    assert!(err.contains(needle), "stderr should name {needle:?}: {err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "a panic: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

pub fn npy(path: &Path, descr: &str, shape: &[usize], data: &[u8]) {
    npy_ordered(path, descr, false, shape, data);
}

/// An `.npy` file whose `data` is in Fortran order when `fortran`.
pub fn npy_ordered(path: &Path, descr: &str, fortran: bool, shape: &[usize], data: &[u8]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let order = if fortran { "True" } else { "False" };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out.extend(data);
    std::fs::write(path, out).unwrap();
}

pub fn png(
    path: &Path,
    w: u32,
    h: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    palette: Option<Vec<u8>>,
) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(color);
    enc.set_depth(depth);
    if let Some(p) = palette {
        enc.set_palette(p);
    }
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(data).unwrap();
}

/// A small deterministic label generator.
pub fn labels(seed: u64, n: usize, k: u64) -> Vec<u64> {
    let mut rng = xent::testing::Rng::new(seed);
    rng.next_u64();
    (0..n)
        .map(|_| {
            let r = rng.next();
            if r.is_multiple_of(20) {
                255
            } else {
                (r % (k * k)).isqrt()
            }
        })
        .collect()
}

pub fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "xent failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// A `.safetensors` file holding `tensors` (name, dtype, shape, little-endian bytes).
pub fn safetensors(path: &Path, tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let start = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    std::fs::write(path, out).unwrap();
}

pub fn f32_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect()
}

pub fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|&x| x.to_le_bytes()).collect()
}

pub fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|&x| x.to_le_bytes()).collect()
}

/// A little-endian TIFF of one page: IFD entries `(tag, type, value)` (types 3 = SHORT and
/// 4 = LONG, one value each, sorted by tag) and then `data`, whose offset in the file is
/// [`tiff_data_offset`]`(entries.len())`.
pub fn tiff(path: &Path, entries: &[(u16, u16, u32)], data: &[u8]) {
    let mut b = b"II*\0".to_vec();
    b.extend(8u32.to_le_bytes());
    b.extend((entries.len() as u16).to_le_bytes());
    for &(tag, ty, v) in entries {
        b.extend(tag.to_le_bytes());
        b.extend(ty.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        match ty {
            3 => b.extend((v as u16).to_le_bytes().into_iter().chain([0, 0])),
            _ => b.extend(v.to_le_bytes()),
        }
    }
    b.extend(0u32.to_le_bytes());
    assert_eq!(b.len() as u32, tiff_data_offset(entries.len()));
    b.extend_from_slice(data);
    std::fs::write(path, b).unwrap();
}

/// Where [`tiff`] puts the data of a file with `n` IFD entries.
pub fn tiff_data_offset(n: usize) -> u32 {
    8 + 2 + 12 * n as u32 + 4
}
