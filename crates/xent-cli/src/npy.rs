//! A reader for NumPy's `.npy` format: versions 1 to 3, either byte order, C or Fortran order
//! ([`Header::to_native`] turns the data into little-endian C order).

use anyhow::{bail, ensure, Context, Result};
use std::io::Read;

/// Element types xent reads from `.npy` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    U8,
    U16,
    I32,
    I64,
    /// IEEE half (`<f2`; `F16` in safetensors).
    F16,
    /// bfloat16 (safetensors' `BF16`; NumPy has no such type).
    BF16,
    F32,
    F64,
}

impl Dtype {
    /// The type and whether it is big-endian (`>`); `|`, `<` and `=` (this machine's, which
    /// xent reads only on little-endian machines) are little-endian.
    fn parse(descr: &str) -> Result<(Dtype, bool)> {
        let (order, code) = descr.split_at(descr.len().min(1));
        let big = match order {
            ">" => true,
            "<" | "|" | "=" => false,
            _ => bail!("dtype {descr:?} is not supported (u1, u2, i4, i8, f2, f4, f8)"),
        };
        let dtype = match code {
            "u1" => Dtype::U8,
            "u2" => Dtype::U16,
            "i4" => Dtype::I32,
            "i8" => Dtype::I64,
            "f2" => Dtype::F16,
            "f4" => Dtype::F32,
            "f8" => Dtype::F64,
            _ => bail!("dtype {descr:?} is not supported (u1, u2, i4, i8, f2, f4, f8)"),
        };
        Ok((dtype, big))
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::U16 | Dtype::F16 | Dtype::BF16 => 2,
            Dtype::I32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::F64 => 8,
        }
    }

    /// A floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64)
    }

    /// NumPy's short name.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::U8 => "uint8",
            Dtype::U16 => "uint16",
            Dtype::I32 => "int32",
            Dtype::I64 => "int64",
            Dtype::F16 => "float16",
            Dtype::BF16 => "bfloat16",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }
}

/// The header of an `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Byte offset of the data.
    pub offset: usize,
    /// Elements stored big-endian.
    pub big_endian: bool,
    /// Stored in Fortran (column-major) order.
    pub fortran: bool,
}

impl Header {
    /// Whether the data is already little-endian C order, as the readers use it.
    pub fn is_native(&self) -> bool {
        !self.big_endian && !self.fortran
    }

    /// The whole data as stored, in little-endian C order.
    pub fn to_native(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        let size = self.dtype.size();
        if self.big_endian {
            bytes.chunks_exact_mut(size).for_each(<[u8]>::reverse);
        }
        if !self.fortran || self.shape.len() < 2 {
            return bytes;
        }
        // Element (i0, .., ik) lies at sum i_j * (d0 .. d_{j-1}) in Fortran order.
        let shape = &self.shape;
        let mut strides = vec![1usize; shape.len()];
        for j in 1..shape.len() {
            strides[j] = strides[j - 1] * shape[j - 1];
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut index = vec![0usize; shape.len()];
        for _ in 0..bytes.len() / size.max(1) {
            let at: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
            out.extend_from_slice(&bytes[at * size..(at + 1) * size]);
            for j in (0..shape.len()).rev() {
                index[j] += 1;
                if index[j] < shape[j] {
                    break;
                }
                index[j] = 0;
            }
        }
        out
    }

    /// The element count, checked against `max_elements` before anything is allocated.
    pub fn elements(&self, max_elements: usize) -> Result<usize> {
        let n = xent::numel(&self.shape).with_context(|| format!("shape {:?}", self.shape))?;
        ensure!(
            n <= max_elements,
            "array of shape {:?} has {n} elements, over the limit of {max_elements}",
            self.shape
        );
        Ok(n)
    }
}

/// The value of `key` in NumPy's header dict (`{'descr': '<u1', 'fortran_order': False, ...}`).
fn field<'a>(dict: &'a str, key: &str) -> Result<&'a str> {
    let k = format!("'{key}':");
    let at = dict.find(&k).with_context(|| format!("header has no {key:?}"))? + k.len();
    let rest = dict[at..].trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').context("unterminated shape")? + 1
    } else if let Some(r) = rest.strip_prefix('\'') {
        r.find('\'').context("unterminated string")? + 2
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Ok(rest[..end].trim())
}

/// Reads and checks the header from the start of `r`.
pub fn read_header(r: &mut impl Read) -> Result<Header> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).context("file too short for an .npy header")?;
    ensure!(&magic[..6] == b"\x93NUMPY", "not an .npy file (bad magic)");
    let (len, pre) = match magic[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).context("truncated header")?;
            (u16::from_le_bytes(b) as usize, 10)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).context("truncated header")?;
            (u32::from_le_bytes(b) as usize, 12)
        }
        v => bail!("unsupported .npy version {v}"),
    };
    ensure!(len <= 1 << 20, "header of {len} bytes is implausibly long");
    let mut dict = vec![0u8; len];
    r.read_exact(&mut dict).context("truncated header")?;
    let dict = String::from_utf8(dict).context("header is not text")?;
    let descr = field(&dict, "descr")?.trim_matches('\'');
    let (dtype, big_endian) = Dtype::parse(descr)?;
    let fortran = match field(&dict, "fortran_order")? {
        "False" => false,
        "True" => true,
        v => bail!("fortran_order {v:?} is neither True nor False"),
    };
    let shape_text = field(&dict, "shape")?;
    let inner = shape_text.strip_prefix('(').and_then(|s| s.strip_suffix(')')).context("malformed shape")?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().with_context(|| format!("malformed shape {shape_text}")))
        .collect::<Result<Vec<_>>>()?;
    Ok(Header { dtype, shape, offset: pre + len, big_endian, fortran })
}

/// Decodes little-endian elements.
pub fn decode<T, const N: usize>(bytes: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    bytes.chunks_exact(N).map(|c| f(c.try_into().expect("chunks of N"))).collect()
}

/// The header of a little-endian, C-order `.npy` (version 1) file.
pub fn header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out
}

#[cfg(test)]
fn encode(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = header(descr, shape);
    out.extend(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let bytes = encode("<i8", &[2, 3], &[0u8; 48]);
        let h = read_header(&mut &bytes[..]).unwrap();
        assert_eq!(
            h,
            Header {
                dtype: Dtype::I64,
                shape: vec![2, 3],
                offset: bytes.len() - 48,
                big_endian: false,
                fortran: false
            }
        );
        assert_eq!(h.offset % 64, 0);
        let scalar = encode("<f4", &[], &[0u8; 4]);
        assert_eq!(read_header(&mut &scalar[..]).unwrap().shape, Vec::<usize>::new());
        let one = encode("|u1", &[5], &[0u8; 5]);
        assert_eq!(read_header(&mut &one[..]).unwrap().shape, vec![5]);
    }

    #[test]
    fn bad_headers_are_errors() {
        assert!(read_header(&mut &b"\x93NUMP"[..]).is_err());
        assert!(read_header(&mut &b"PK\x03\x04...."[..]).is_err());
        let f = encode("<c8", &[1], &[0u8; 8]);
        assert!(read_header(&mut &f[..]).is_err());
        let bad = encode(">c8", &[1], &[0u8; 8]);
        assert!(read_header(&mut &bad[..]).is_err());
    }
}
