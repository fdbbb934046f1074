//! NIfTI-1 and NIfTI-2 label volumes, `.nii` and `.nii.gz` (single-file, either byte order).
//!
//! The header is read by us (348 bytes for NIfTI-1, 540 for NIfTI-2; the `nifti` crate refuses
//! NIfTI-2 and cannot bound what it inflates). A file's voxels are checked against the limit from
//! the header before anything is allocated or inflated; the data is read to exactly the header's
//! size, and a file whose data runs on past it is refused: a `.nii.gz` is inflated at most one
//! byte past the header's size (and its gzip checksum checked), so a gzip bomb costs nothing.
//!
//! Voxel values `x` become labels `scl_slope * x + scl_inter` when `scl_slope` is set (not 0,
//! finite), as NIfTI and nibabel say; float data, or scaled data, must then hold integers.

use crate::masks::{Labels, Mask};
use anyhow::{bail, ensure, Context, Result};
use std::io::Read;
use std::path::Path;

/// Header bytes read before the extensions and the data may follow.
const EXTENSIONS_MAX: u64 = 64 << 20;

/// Voxel types of a NIfTI header (`datatype`) that can hold labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Datatype {
    U8,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

impl Datatype {
    fn from_code(code: i16) -> Result<Datatype> {
        Ok(match code {
            2 => Datatype::U8,
            256 => Datatype::I8,
            4 => Datatype::I16,
            512 => Datatype::U16,
            8 => Datatype::I32,
            768 => Datatype::U32,
            1024 => Datatype::I64,
            1280 => Datatype::U64,
            16 => Datatype::F32,
            64 => Datatype::F64,
            c => bail!("NIfTI datatype {c} cannot hold labels (uint8/16/32/64, int8/16/32/64, float32, float64 can)"),
        })
    }

    fn size(self) -> usize {
        match self {
            Datatype::U8 | Datatype::I8 => 1,
            Datatype::I16 | Datatype::U16 => 2,
            Datatype::I32 | Datatype::U32 | Datatype::F32 => 4,
            Datatype::I64 | Datatype::U64 | Datatype::F64 => 8,
        }
    }
}

/// What xent needs of a NIfTI header.
#[derive(Debug)]
struct Header {
    /// `dim[1..=dim[0]]`.
    dims: Vec<usize>,
    datatype: Datatype,
    /// Where the data starts, in bytes from the start of the file.
    vox_offset: u64,
    /// `(scl_slope, scl_inter)` when scaling applies.
    scale: Option<(f64, f64)>,
    big_endian: bool,
    /// 348 (NIfTI-1) or 540 (NIfTI-2).
    size: usize,
}

impl Header {
    /// Reads a header from `r` (positioned at the start of the file).
    fn read(r: &mut impl Read) -> Result<Header> {
        let mut b = vec![0u8; 4];
        r.read_exact(&mut b).context("truncated NIfTI header")?;
        let size_le = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let size_be = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let (size, big_endian) = match (size_le, size_be) {
            (348, _) => (348, false),
            (_, 348) => (348, true),
            (540, _) => (540, false),
            (_, 540) => (540, true),
            _ => bail!("not a NIfTI file: sizeof_hdr is {size_le}, neither 348 (NIfTI-1) nor 540 (NIfTI-2)"),
        };
        b.resize(size, 0);
        r.read_exact(&mut b[4..]).context("truncated NIfTI header")?;
        Header::parse(&b, big_endian)
    }

    fn parse(b: &[u8], big: bool) -> Result<Header> {
        let i16_at = |o: usize| {
            let v = [b[o], b[o + 1]];
            if big {
                i16::from_be_bytes(v)
            } else {
                i16::from_le_bytes(v)
            }
        };
        let u32_at = |o: usize| {
            let v = [b[o], b[o + 1], b[o + 2], b[o + 3]];
            if big {
                u32::from_be_bytes(v)
            } else {
                u32::from_le_bytes(v)
            }
        };
        let u64_at = |o: usize| {
            let v: [u8; 8] = b[o..o + 8].try_into().expect("8 bytes");
            if big {
                u64::from_be_bytes(v)
            } else {
                u64::from_le_bytes(v)
            }
        };
        let (dims, datatype, vox_offset, slope, inter) = if b.len() == 348 {
            match &b[344..348] {
                b"n+1\0" => {}
                b"ni1\0" => bail!("a two-file NIfTI-1 (.hdr + .img); xent reads single-file .nii and .nii.gz"),
                m => bail!("not a NIfTI-1 file: magic {m:?}, not \"n+1\""),
            }
            let dims: Vec<i64> = (0..8).map(|k| i64::from(i16_at(40 + 2 * k))).collect();
            let vox = f64::from(f32::from_bits(u32_at(108)));
            ensure!(vox.fract() == 0.0 && vox >= 0.0, "vox_offset {vox} is not a byte offset");
            let (slope, inter) = (f32::from_bits(u32_at(112)), f32::from_bits(u32_at(116)));
            (dims, i16_at(70), vox as u64, f64::from(slope), f64::from(inter))
        } else {
            ensure!(&b[4..12] == b"n+2\0\r\n\x1a\n", "not a NIfTI-2 file: magic {:?}, not \"n+2\"", &b[4..12]);
            let dims: Vec<i64> = (0..8).map(|k| u64_at(16 + 8 * k) as i64).collect();
            let vox = u64_at(168) as i64;
            ensure!(vox >= 0, "vox_offset {vox} is not a byte offset");
            (dims, i16_at(12), vox as u64, f64::from_bits(u64_at(176)), f64::from_bits(u64_at(184)))
        };
        let ndim = dims[0];
        ensure!((1..=7).contains(&ndim), "dim[0] is {ndim}: a NIfTI volume has 1 to 7 dimensions");
        let dims = dims[1..=ndim as usize]
            .iter()
            .enumerate()
            .map(|(k, &d)| {
                ensure!(d >= 1, "dim[{}] is {d}: every dimension must be at least 1", k + 1);
                usize::try_from(d).context("a dimension too large for this machine")
            })
            .collect::<Result<Vec<usize>>>()?;
        let size = b.len();
        ensure!(
            vox_offset >= size as u64 + 4,
            "vox_offset {vox_offset} points inside the header (a single-file NIfTI's data starts at {} or later)",
            size + 4
        );
        ensure!(
            vox_offset - size as u64 <= EXTENSIONS_MAX,
            "vox_offset {vox_offset}: over {} MiB of header extensions before the data",
            EXTENSIONS_MAX >> 20
        );
        // NIfTI: scl_slope = 0 means no scaling; nibabel treats a non-finite slope the same way.
        let scale = if slope == 0.0 || !slope.is_finite() || (slope == 1.0 && inter == 0.0) {
            None
        } else {
            ensure!(inter.is_finite(), "scl_slope is {slope} but scl_inter is {inter}");
            Some((slope, inter))
        };
        Ok(Header { dims, datatype: Datatype::from_code(datatype)?, vox_offset, scale, big_endian: big, size })
    }

    /// Voxels in the whole file, at most `max`.
    fn voxels(&self, max: usize) -> Result<usize> {
        let n = self.dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        match n {
            Some(n) if n <= max => Ok(n),
            _ => bail!("NIfTI header claims {:?} voxels, over the limit of {max} (--max-pixels)", self.dims),
        }
    }
}

/// Reads the NIfTI file at `path` (`.nii`, or `.nii.gz` when `gzip`): each 3-D volume is one
/// image (a 4-D file holds `dim[4]` of them).
pub fn read(path: &Path, gzip: bool, max_voxels: usize) -> Result<Mask> {
    let file = std::fs::File::open(path).context("cannot open")?;
    let len = file.metadata().context("cannot stat")?.len();
    let file = std::io::BufReader::new(file);
    let mut r: Box<dyn Read> = if gzip { Box::new(flate2::read::MultiGzDecoder::new(file)) } else { Box::new(file) };
    let what = if gzip { "gzip stream" } else { "file" };
    let h = Header::read(&mut r).with_context(|| if gzip { "corrupt .nii.gz" } else { "corrupt .nii" })?;
    let n = h.voxels(max_voxels)?;
    let bytes = n * h.datatype.size();
    let end = h.vox_offset + bytes as u64;
    if !gzip {
        ensure!(len == end, "file has {len} bytes, its header (data at {}, {n} voxels) needs {end}", h.vox_offset);
    }
    let skip = h.vox_offset - h.size as u64;
    let skipped = std::io::copy(&mut (&mut r).take(skip), &mut std::io::sink()).context("corrupt data")?;
    ensure!(skipped == skip, "truncated: the {what} ends before the data (at {})", h.vox_offset);
    let mut data = vec![0u8; bytes];
    r.read_exact(&mut data)
        .with_context(|| format!("truncated: the header's {n} voxels need {bytes} bytes of data"))?;
    let mut more = [0u8; 1];
    match r.read(&mut more) {
        Ok(0) => {}
        Ok(_) => bail!("corrupt: the {what} runs on past the header's {n} voxels (data ends at byte {end})"),
        Err(e) => return Err(e).context("corrupt data after the voxels"),
    }
    let d = |k: usize| h.dims.get(k).copied().unwrap_or(1);
    let (width, height, depth) = (d(0), d(1), d(2));
    let labels = labels(&h, data, [width, height, depth])?;
    Ok(Mask { labels, images: n / (width * height * depth), height, width, depth })
}

/// The voxels as labels: integer types as they are, scaled or float values when every one is an
/// integer (otherwise an error naming the first that is not).
fn labels(h: &Header, data: Vec<u8>, [w, hh, d]: [usize; 3]) -> Result<Labels> {
    let big = h.big_endian;
    macro_rules! decode {
        ($t:ty) => {
            data.chunks_exact(std::mem::size_of::<$t>())
                .map(|c| {
                    let c = c.try_into().expect("element bytes");
                    if big {
                        <$t>::from_be_bytes(c)
                    } else {
                        <$t>::from_le_bytes(c)
                    }
                })
                .collect::<Vec<$t>>()
        };
    }
    let at = |i: usize| {
        let (x, y, z, t) = (i % w, i / w % hh, i / (w * hh) % d, i / (w * hh * d));
        let vol = if i >= w * hh * d || t > 0 { format!(" of volume {t}") } else { String::new() };
        format!("voxel ({x}, {y}, {z}){vol}")
    };
    let to_i64 = |v: Vec<f64>| -> Result<Labels> {
        let mut out = Vec::with_capacity(v.len());
        for (i, x) in v.into_iter().enumerate() {
            let x = match h.scale {
                Some((s, c)) => x.mul_add(s, c),
                None => x,
            };
            ensure!(
                x.fract() == 0.0 && x.abs() < 9.0e15,
                "{} is {x}{}, not an integer label",
                at(i),
                if h.scale.is_some() { " after scl_slope/scl_inter" } else { "" }
            );
            out.push(x as i64);
        }
        Ok(Labels::I64(out))
    };
    let widen = |v: Vec<i64>| {
        if h.scale.is_some() {
            to_i64(v.into_iter().map(|x| x as f64).collect())
        } else {
            Ok(Labels::I64(v))
        }
    };
    Ok(match (h.datatype, h.scale) {
        (Datatype::U8, None) => Labels::U8(data),
        (Datatype::U16, None) => Labels::U16(decode!(u16)),
        (Datatype::I8, None) => Labels::I32(decode!(i8).into_iter().map(i32::from).collect()),
        (Datatype::I16, None) => Labels::I32(decode!(i16).into_iter().map(i32::from).collect()),
        (Datatype::I32, None) => Labels::I32(decode!(i32)),
        (Datatype::U8, _) => widen(data.into_iter().map(i64::from).collect())?,
        (Datatype::U16, _) => widen(decode!(u16).into_iter().map(i64::from).collect())?,
        (Datatype::I8, _) => widen(decode!(i8).into_iter().map(i64::from).collect())?,
        (Datatype::I16, _) => widen(decode!(i16).into_iter().map(i64::from).collect())?,
        (Datatype::I32, _) => widen(decode!(i32).into_iter().map(i64::from).collect())?,
        (Datatype::U32, _) => widen(decode!(u32).into_iter().map(i64::from).collect())?,
        (Datatype::I64, _) => widen(decode!(i64))?,
        (Datatype::U64, _) => {
            let v = decode!(u64);
            if let Some(i) = v.iter().position(|&x| x > i64::MAX as u64) {
                bail!("{} is {}, too large for a label", at(i), v[i]);
            }
            widen(v.into_iter().map(|x| x as i64).collect())?
        }
        (Datatype::F32, _) => to_i64(decode!(f32).into_iter().map(f64::from).collect())?,
        (Datatype::F64, _) => to_i64(decode!(f64))?,
    })
}
