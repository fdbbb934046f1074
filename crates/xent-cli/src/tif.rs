//! TIFF and GeoTIFF label masks through the `tiff` crate: single-band 8-, 16- or 32-bit integer
//! samples (or palette indices), striped or tiled, uncompressed, LZW, Deflate or PackBits,
//! classic or BigTIFF, either byte order. Every full-resolution page is one image; reduced-
//! resolution pages (GeoTIFF overviews) and transparency masks (`NewSubfileType` bits 0 and 2) are
//! not labels and are passed over.
//!
//! Tiled LZW images are decoded here, tile by tile, the way libtiff does (stop once the tile is
//! full, whether or not an end code follows): `tiff` 0.11.3 fails on some partial edge tiles with
//! "no lzw end code found" (image-tiff issue #395, fixed on its main branch, not released).

use crate::masks::{Labels, Mask};
use anyhow::{bail, ensure, Context, Result};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use tiff::decoder::{ChunkType, Decoder, DecodingResult, Limits};
use tiff::tags::Tag;
use tiff::ColorType;

type File = BufReader<std::fs::File>;

/// Reads every full-resolution page of the TIFF file at `path` (all of one size); the file's
/// pixels, over all pages, are checked against `max_pixels` before each page is decoded.
pub fn read(path: &Path, max_pixels: usize) -> Result<Mask> {
    let file = std::fs::File::open(path).context("cannot open")?;
    let len = file.metadata().context("cannot stat")?.len();
    let mut limits = Limits::default();
    limits.decoding_buffer_size = max_pixels.saturating_mul(4);
    limits.intermediate_buffer_size = max_pixels.saturating_mul(4);
    let mut dec = Decoder::new(BufReader::new(file)).context("corrupt TIFF")?.with_limits(limits);
    let (mut pages, mut size, mut pixels) = (Vec::new(), None, 0usize);
    for page in 0.. {
        let subfile = dec.find_tag_unsigned::<u32>(Tag::NewSubfileType).context("corrupt TIFF")?.unwrap_or(0);
        if subfile & 0b101 == 0 {
            let (w, h) = dec.dimensions().context("corrupt TIFF")?;
            let (w, h) = (w as usize, h as usize);
            pixels = pixels.saturating_add(w.saturating_mul(h));
            ensure!(
                pixels <= max_pixels,
                "TIFF claims {pixels} pixels or more, over the limit of {max_pixels} (--max-pixels)"
            );
            match *size.get_or_insert((w, h)) {
                s if s == (w, h) => {}
                (w0, h0) => bail!("page {page} is {w} x {h}, page 0 {w0} x {h0}: a mask's pages must be of one size"),
            }
            pages.push(read_page(&mut dec, len, max_pixels).with_context(|| format!("page {page}"))?);
        }
        if !dec.more_images() {
            break;
        }
        dec.next_image().with_context(|| format!("page {}: corrupt TIFF", page + 1))?;
    }
    let (width, height) = size.context("no full-resolution page in the TIFF")?;
    let images = pages.len();
    let labels = match pages.into_iter().reduce(|a, b| a.concat(b)) {
        Some(Page::U8(v)) => Labels::U8(v),
        Some(Page::U16(v)) => Labels::U16(v),
        Some(Page::I32(v)) => Labels::I32(v),
        Some(Page::I64(v)) => Labels::I64(v),
        Some(Page::Mixed) => bail!("the pages have different sample types"),
        None => unreachable!("a size implies a page"),
    };
    Ok(Mask { labels, images, height, width, depth: 1 })
}

/// One page's labels in the narrowest type that holds them.
enum Page {
    U8(Vec<u8>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    Mixed,
}

impl Page {
    fn concat(self, b: Page) -> Page {
        match (self, b) {
            (Page::U8(mut a), Page::U8(b)) => {
                a.extend(b);
                Page::U8(a)
            }
            (Page::U16(mut a), Page::U16(b)) => {
                a.extend(b);
                Page::U16(a)
            }
            (Page::I32(mut a), Page::I32(b)) => {
                a.extend(b);
                Page::I32(a)
            }
            (Page::I64(mut a), Page::I64(b)) => {
                a.extend(b);
                Page::I64(a)
            }
            _ => Page::Mixed,
        }
    }
}

fn read_page(dec: &mut Decoder<File>, len: u64, max_pixels: usize) -> Result<Page> {
    let bits = match dec.colortype().context("corrupt TIFF")? {
        ColorType::Gray(b) | ColorType::Palette(b) => b,
        c => bail!("a mask has one band of labels; this TIFF is {c:?}"),
    };
    ensure!(matches!(bits, 8 | 16 | 32), "{bits}-bit samples: TIFF masks must have 8, 16 or 32 bits per sample");
    let compression = dec.find_tag_unsigned::<u16>(Tag::Compression).context("corrupt TIFF")?.unwrap_or(1);
    let placed = chunks(dec, len)?;
    let result = if dec.get_chunk_type() == ChunkType::Tile && compression == 5 {
        read_lzw_tiles(dec, placed, max_pixels, bits)?
    } else {
        dec.read_image().context("corrupt TIFF")?
    };
    Ok(match result {
        DecodingResult::U8(v) => Page::U8(v),
        DecodingResult::U16(v) => Page::U16(v),
        DecodingResult::U32(v) => Page::I64(v.into_iter().map(i64::from).collect()),
        DecodingResult::I8(v) => Page::I32(v.into_iter().map(i32::from).collect()),
        DecodingResult::I16(v) => Page::I32(v.into_iter().map(i32::from).collect()),
        DecodingResult::I32(v) => Page::I32(v),
        _ => bail!("float or 64-bit samples: TIFF masks must hold 8-, 16- or 32-bit integers"),
    })
}

/// The page's strip or tile offsets and byte counts, each checked to lie inside the file.
fn chunks(dec: &mut Decoder<File>, len: u64) -> Result<(Vec<u64>, Vec<u64>)> {
    let (what, offsets, counts) = match dec.get_chunk_type() {
        ChunkType::Strip => ("strip", Tag::StripOffsets, Tag::StripByteCounts),
        ChunkType::Tile => ("tile", Tag::TileOffsets, Tag::TileByteCounts),
    };
    let offsets = dec.get_tag_u64_vec(offsets).with_context(|| format!("corrupt TIFF: {what} offsets"))?;
    let counts = dec.get_tag_u64_vec(counts).with_context(|| format!("corrupt TIFF: {what} byte counts"))?;
    ensure!(offsets.len() == counts.len(), "{} {what} offsets but {} byte counts", offsets.len(), counts.len());
    for (i, (&at, &n)) in offsets.iter().zip(&counts).enumerate() {
        ensure!(
            at.checked_add(n).is_some_and(|end| end <= len),
            "{what} {i} at bytes {at}..+{n} runs past the end of the file ({len} bytes)"
        );
    }
    Ok((offsets, counts))
}

/// A tiled LZW page, decoded tile by tile: each tile's codes are decoded until the tile is full
/// (the padding of an edge tile included), the horizontal predictor undone over the tile's full
/// width, and the tile's part inside the image copied out.
fn read_lzw_tiles(
    dec: &mut Decoder<File>,
    (offsets, counts): (Vec<u64>, Vec<u64>),
    max_pixels: usize,
    bits: u8,
) -> Result<DecodingResult> {
    let (w, h) = dec.dimensions()?;
    let (w, h) = (w as usize, h as usize);
    let (tw, th) = dec.chunk_dimensions();
    let (tw, th) = (tw as usize, th as usize);
    ensure!(
        tw > 0 && th > 0 && tw.saturating_mul(th) <= max_pixels,
        "tile size {tw} x {th}: empty or over --max-pixels"
    );
    let bytes = usize::from(bits / 8);
    let tile_bytes = tw.checked_mul(th).and_then(|n| n.checked_mul(bytes)).context("tile size overflows")?;
    let signed = dec.find_tag_unsigned::<u16>(Tag::SampleFormat)?.unwrap_or(1) == 2;
    let predictor = dec.find_tag_unsigned::<u16>(Tag::Predictor)?.unwrap_or(1);
    ensure!(matches!(predictor, 1 | 2), "TIFF predictor {predictor}: integer masks use none (1) or horizontal (2)");
    let (across, down) = (w.div_ceil(tw), h.div_ceil(th));
    ensure!(offsets.len() >= across * down, "{} tile offsets for {across} x {down} tiles", offsets.len());
    let big = matches!(dec.byte_order(), tiff::tags::ByteOrder::BigEndian);
    let mut image = vec![0u8; w * h * bytes];
    let (mut compressed, mut tile) = (Vec::new(), vec![0u8; tile_bytes]);
    for (i, (&at, &n)) in offsets.iter().zip(&counts).take(across * down).enumerate() {
        compressed.resize(n as usize, 0);
        let r = dec.inner();
        r.seek(SeekFrom::Start(at))?;
        r.read_exact(&mut compressed).with_context(|| format!("tile {i}: truncated"))?;
        lzw_decode(&compressed, &mut tile).with_context(|| format!("tile {i}: corrupt LZW data"))?;
        if big && bytes > 1 {
            tile.chunks_exact_mut(bytes).for_each(<[u8]>::reverse);
        }
        if predictor == 2 {
            undo_horizontal(&mut tile, tw * bytes, bytes);
        }
        let (x0, y0) = (i % across * tw, i / across * th);
        let cols = tw.min(w - x0) * bytes;
        for y in 0..th.min(h - y0) {
            let dst = ((y0 + y) * w + x0) * bytes;
            image[dst..dst + cols].copy_from_slice(&tile[y * tw * bytes..][..cols]);
        }
    }
    macro_rules! typed {
        ($t:ty) => {
            image
                .chunks_exact(std::mem::size_of::<$t>())
                .map(|c| <$t>::from_le_bytes(c.try_into().expect("sample")))
                .collect()
        };
    }
    Ok(match (bytes, signed) {
        (1, false) => DecodingResult::U8(image),
        (1, true) => DecodingResult::I8(typed!(i8)),
        (2, false) => DecodingResult::U16(typed!(u16)),
        (2, true) => DecodingResult::I16(typed!(i16)),
        (_, false) => DecodingResult::U32(typed!(u32)),
        (_, true) => DecodingResult::I32(typed!(i32)),
    })
}

/// Decodes TIFF LZW (MSB first, with the early code-size switch) into all of `out`; the tile is
/// complete once `out` is full, end code or not. Fewer bytes than `out` holds is an error.
fn lzw_decode(input: &[u8], out: &mut [u8]) -> Result<()> {
    let mut d = weezl::decode::Configuration::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
        .with_yield_on_full_buffer(true)
        .build();
    let (mut read, mut written) = (0, 0);
    while written < out.len() {
        let r = d.decode_bytes(&input[read..], &mut out[written..]);
        read += r.consumed_in;
        written += r.consumed_out;
        match r.status? {
            weezl::LzwStatus::Ok => {}
            weezl::LzwStatus::Done | weezl::LzwStatus::NoProgress => break,
        }
    }
    ensure!(written == out.len(), "{written} bytes where the tile holds {}", out.len());
    Ok(())
}

/// Undoes TIFF's horizontal differencing: each sample of a row (`row` bytes of little-endian
/// samples of `bytes` bytes) is the wrapping sum of itself and the ones before it.
fn undo_horizontal(tile: &mut [u8], row: usize, bytes: usize) {
    for r in tile.chunks_exact_mut(row) {
        match bytes {
            1 => (1..r.len()).for_each(|i| r[i] = r[i].wrapping_add(r[i - 1])),
            2 => {
                let mut prev = 0u16;
                for c in r.chunks_exact_mut(2) {
                    prev = prev.wrapping_add(u16::from_le_bytes([c[0], c[1]]));
                    c.copy_from_slice(&prev.to_le_bytes());
                }
            }
            _ => {
                let mut prev = 0u32;
                for c in r.chunks_exact_mut(4) {
                    prev = prev.wrapping_add(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                    c.copy_from_slice(&prev.to_le_bytes());
                }
            }
        }
    }
}
