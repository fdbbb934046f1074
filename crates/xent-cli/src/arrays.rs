//! Arrays on disk, read a slab of rows at a time: `.npy` files and tensors of `.safetensors`
//! files (`FILE:NAME`).

use crate::npy::{self, Dtype};
use anyhow::{bail, ensure, Context, Result};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// One array in a file: where its row-major data starts, its type and shape.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    offset: u64,
    /// `.npy` elements stored big-endian.
    big_endian: bool,
    /// `.npy` data in Fortran order: read whole (rows are not contiguous).
    pub fortran: bool,
}

/// Opens `spec`: `FILE.npy`, `FILE.safetensors:NAME`, or `FILE.safetensors` holding one tensor.
/// The element count is checked against `max_elements` and the file's length.
pub fn open(spec: &str, max_elements: usize) -> Result<Source> {
    let (path, name) = match spec.rsplit_once(':') {
        Some((p, n)) if p.ends_with(".safetensors") => (p, Some(n)),
        _ => (spec, None),
    };
    let path = Path::new(path);
    let ctx = || path.display().to_string();
    // Never open a FIFO, socket or device: opening a FIFO blocks until a writer comes.
    let md = std::fs::metadata(path).with_context(|| format!("{}: cannot open", path.display()))?;
    ensure!(md.is_file(), "{}: not a regular file (a FIFO, socket, device or folder)", path.display());
    let file = std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let len = file.metadata().with_context(ctx)?.len();
    let mut r = BufReader::new(file);
    let is_st = path.extension().is_some_and(|e| e == "safetensors");
    let (dtype, shape, offset, big_endian, fortran) = if is_st {
        let (d, s, o) = safetensors_header(&mut r, name).with_context(ctx)?;
        (d, s, o, false, false)
    } else {
        ensure!(name.is_none(), "{}: only .safetensors files hold named tensors", path.display());
        let h = npy::read_header(&mut r).with_context(ctx)?;
        (h.dtype, h.shape, h.offset as u64, h.big_endian, h.fortran)
    };
    let n = xent::numel(&shape).with_context(ctx)?;
    ensure!(
        n <= max_elements,
        "{}: array of shape {shape:?} has {n} elements, over the limit of {max_elements}",
        path.display()
    );
    let need = offset + (n * dtype.size()) as u64;
    ensure!(
        len >= need && (is_st || len == need),
        "{}: truncated or corrupt: {len} bytes, the {} array of shape {shape:?} needs {need}",
        path.display(),
        dtype.name()
    );
    Ok(Source { path: path.to_path_buf(), dtype, shape, offset, big_endian, fortran })
}

/// The dtype, shape and data offset of tensor `name` (or of the only tensor) of a
/// `.safetensors` file, from its header, read through the `safetensors` crate's types. The
/// header's length is bounded before it is read (no allocation from a corrupt length).
pub fn safetensors_header(r: &mut impl Read, name: Option<&str>) -> Result<(Dtype, Vec<usize>, u64)> {
    use safetensors::tensor::Metadata;
    let mut n = [0u8; 8];
    r.read_exact(&mut n).context("file too short for a safetensors header")?;
    let n = u64::from_le_bytes(n);
    ensure!(n <= 100 << 20, "safetensors header of {n} bytes is implausibly long (corrupt file?)");
    let mut header = vec![0u8; n as usize];
    r.read_exact(&mut header).context("truncated safetensors header")?;
    let meta: Metadata =
        serde_json::from_slice(&header).context("safetensors header is not JSON, or not JSON of tensors")?;
    let names = meta.offset_keys();
    let name = match (name, names.as_slice()) {
        (Some(n), _) => n,
        (None, [only]) => only.as_str(),
        (None, _) => bail!("holds {} tensors {names:?}: choose one with FILE:NAME", names.len()),
    };
    let t = meta.info(name).with_context(|| format!("no tensor named {name:?} (it holds {names:?})"))?;
    let dtype = match t.dtype {
        safetensors::Dtype::U8 => Dtype::U8,
        safetensors::Dtype::U16 => Dtype::U16,
        safetensors::Dtype::I32 => Dtype::I32,
        safetensors::Dtype::I64 => Dtype::I64,
        safetensors::Dtype::F16 => Dtype::F16,
        safetensors::Dtype::BF16 => Dtype::BF16,
        safetensors::Dtype::F32 => Dtype::F32,
        safetensors::Dtype::F64 => Dtype::F64,
        other => bail!("tensor {name:?} has dtype {other:?}, not one of U8, U16, I32, I64, F16, BF16, F32, F64"),
    };
    let elements = xent::numel(&t.shape)?;
    let (start, end) = t.data_offsets;
    ensure!(
        end.checked_sub(start) == Some(elements * dtype.size()),
        "tensor {name:?}: data_offsets {:?} do not fit shape {:?} of {}",
        t.data_offsets,
        t.shape,
        dtype.name()
    );
    Ok((dtype, t.shape.clone(), 8 + n + start as u64))
}

/// Element types a [`Source`] can be read as.
pub trait Element: Copy + Send + Sync + 'static {
    fn decode(dtype: Dtype, bytes: &[u8]) -> Result<Vec<Self>>;
}

macro_rules! element {
    ($t:ty, floats: $floats:expr) => {
        impl Element for $t {
            fn decode(dtype: Dtype, b: &[u8]) -> Result<Vec<$t>> {
                Ok(match dtype {
                    Dtype::U8 if !$floats => b.iter().map(|&v| v as $t).collect(),
                    Dtype::U16 if !$floats => npy::decode(b, u16::from_le_bytes).into_iter().map(|v| v as $t).collect(),
                    Dtype::I32 if !$floats => npy::decode(b, i32::from_le_bytes).into_iter().map(|v| v as $t).collect(),
                    Dtype::I64 if !$floats => npy::decode(b, i64::from_le_bytes).into_iter().map(|v| v as $t).collect(),
                    // Half values widen exactly (they are computed in f32).
                    Dtype::F16 if $floats => npy::decode(b, u16::from_le_bytes)
                        .into_iter()
                        .map(|v| xent::f16::from_bits(v).to_f64() as $t)
                        .collect(),
                    Dtype::BF16 if $floats => npy::decode(b, u16::from_le_bytes)
                        .into_iter()
                        .map(|v| xent::bf16::from_bits(v).to_f64() as $t)
                        .collect(),
                    Dtype::F32 if $floats => npy::decode(b, f32::from_le_bytes).into_iter().map(|v| v as $t).collect(),
                    Dtype::F64 if $floats => npy::decode(b, f64::from_le_bytes).into_iter().map(|v| v as $t).collect(),
                    d => bail!(
                        "has dtype {}, expected {}",
                        d.name(),
                        if $floats { "a float type" } else { "an integer type" }
                    ),
                })
            }
        }
    };
}
element!(f32, floats: true);
element!(f64, floats: true);
element!(i64, floats: false);

impl Source {
    /// Elements per row (slice of the first dimension); the whole array for a scalar.
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// Rows (the first dimension; 1 for a scalar).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Reads rows `r0 .. r0 + rows` as `T`, a MiB or so of the file at a time (a Fortran-order
    /// array is read whole, then cut).
    pub fn read_rows<T: Element>(&self, r0: usize, rows: usize) -> Result<Vec<T>> {
        let ctx = || self.path.display().to_string();
        let per = self.row_len() * self.dtype.size();
        let (first, count) = if self.fortran { (0, self.rows()) } else { (r0, rows) };
        let mut f = std::fs::File::open(&self.path).with_context(ctx)?;
        f.seek(SeekFrom::Start(self.offset + (first * per) as u64)).with_context(ctx)?;
        let step = if self.fortran { count.max(1) } else { ((1 << 20) / per.max(1)).max(1) };
        let mut out = Vec::with_capacity(rows * self.row_len());
        let mut done = 0;
        while done < count {
            let k = step.min(count - done);
            let mut bytes = vec![0u8; k * per];
            f.read_exact(&mut bytes).with_context(|| format!("{}: truncated data", self.path.display()))?;
            let shape =
                if self.fortran { self.shape.clone() } else { [&[k][..], self.shape.get(1..).unwrap_or(&[])].concat() };
            let layout =
                npy::Header { dtype: self.dtype, shape, offset: 0, big_endian: self.big_endian, fortran: self.fortran };
            let mut bytes = layout.to_native(bytes);
            if self.fortran {
                bytes = bytes[r0 * per..(r0 + rows) * per].to_vec();
            }
            out.extend(T::decode(self.dtype, &bytes).with_context(ctx)?);
            done += k;
        }
        Ok(out)
    }

    /// The whole array as `T`.
    pub fn read_all<T: Element>(&self) -> Result<Vec<T>> {
        self.read_rows(0, self.rows())
    }
}
