//! How work is split over threads.
//!
//! Work is cut into fixed blocks whose size depends only on the shape, never on the number of
//! threads. Each block is computed the same way on any thread, and per-block partial sums
//! (`f64`) are combined in block order, so 1 thread and 16 threads give the same bits.

use crate::kernel::{Block, ClassOut};
use crate::layout::Layout;
use crate::sum::ExactSum;

/// Elements (classes x positions) a block covers, about.
pub(crate) const BLOCK_ELEMS: usize = 1 << 14;

/// Positions of a block of rows (`inner == 1`): `8 * BLOCK_ELEMS` elements, so that the
/// kernels' per-block set-up (zeroing their stack scratch tiles, 64 KiB in f32) stays small
/// next to the rows.
pub(crate) fn rows_per_block(classes: usize) -> usize {
    (8 * BLOCK_ELEMS / classes.max(1)).max(1)
}

/// The blocks of `lay`, in order.
pub(crate) fn blocks(lay: Layout) -> Vec<Block> {
    let per = if lay.inner == 1 { rows_per_block(lay.classes) } else { (BLOCK_ELEMS / lay.classes.max(1)).max(1) };
    let mut out = Vec::new();
    if lay.positions() == 0 {
        // Nothing to do, however large the other dimensions are.
    } else if lay.inner == 1 {
        let mut r = 0;
        while r < lay.outer {
            let len = per.min(lay.outer - r);
            out.push(Block { p0: r, len, base: r * lay.classes, lane_stride: lay.classes });
            r += len;
        }
    } else {
        for n in 0..lay.outer {
            let mut j = 0;
            while j < lay.inner {
                let len = per.min(lay.inner - j);
                out.push(Block { p0: n * lay.inner + j, len, base: n * lay.classes * lay.inner + j, lane_stride: 1 });
                j += len;
            }
        }
    }
    out
}

/// Cuts a class-shaped output into the blocks' shares.
fn split_class_out<'a, T>(lay: Layout, blocks: &[Block], out: &'a mut [T]) -> Vec<ClassOut<'a, T>> {
    let mut shares = Vec::with_capacity(blocks.len());
    if lay.inner == 1 {
        let mut rest = out;
        for b in blocks {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(b.len * lay.classes);
            rest = tail;
            shares.push(ClassOut { segs: vec![head], rowwise: true, classes: lay.classes });
        }
    } else {
        let per_n = blocks.len() / lay.outer.max(1);
        for slab in out.chunks_mut(lay.classes * lay.inner) {
            let first = shares.len();
            for _ in 0..per_n {
                shares.push(ClassOut { segs: Vec::with_capacity(lay.classes), rowwise: false, classes: lay.classes });
            }
            for row in slab.chunks_mut(lay.inner) {
                let mut rest = row;
                for (share, b) in shares[first..].iter_mut().zip(&blocks[first..]) {
                    let (head, tail) = std::mem::take(&mut rest).split_at_mut(b.len);
                    rest = tail;
                    share.segs.push(head);
                }
            }
        }
    }
    shares
}

/// Cuts `out` into consecutive pieces of the given lengths (an empty `out` gives empty pieces).
pub(crate) fn split_runs<T>(out: &mut [T], lens: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
    let mut rest = out;
    lens.map(|len| {
        let len = len.min(rest.len());
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        head
    })
    .collect()
}

/// Maps `f` over items, in parallel when the `rayon` feature is on, keeping their order.
pub(crate) fn map_ordered<I, R, F>(items: Vec<I>, f: F) -> Vec<R>
where
    I: Send,
    R: Send,
    F: Fn(I) -> R + Sync + Send,
{
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        items.into_par_iter().map(f).collect()
    }
    #[cfg(not(feature = "rayon"))]
    {
        items.into_iter().map(f).collect()
    }
}

/// Runs `f` on every block of `lay` with its share of a class-shaped output and of a
/// position-shaped output (either may be empty), and returns the results in block order.
pub(crate) fn for_blocks<C, P, R, F>(lay: Layout, class_out: &mut [C], pos_out: &mut [P], f: F) -> Vec<R>
where
    C: Copy + Send,
    P: Copy + Send,
    R: Send,
    F: Fn(Block, Option<ClassOut<'_, C>>, &mut [P]) -> R + Sync + Send,
{
    let blocks = blocks(lay);
    let mut class_shares: Vec<Option<ClassOut<'_, C>>> = if class_out.is_empty() {
        blocks.iter().map(|_| None).collect()
    } else {
        split_class_out(lay, &blocks, class_out).into_iter().map(Some).collect()
    };
    let pos_shares = split_runs(pos_out, blocks.iter().map(|b| b.len));
    let items: Vec<_> = blocks.into_iter().zip(class_shares.drain(..)).zip(pos_shares).collect();
    map_ordered(items, |((b, c), p)| f(b, c, p))
}

/// Runs `f` on fixed runs of `len` elements with their shares of two element-shaped outputs
/// (either may be empty), and returns the results in order.
pub(crate) fn for_runs<A, B, R, F>(len: usize, out_a: &mut [A], out_b: &mut [B], f: F) -> Vec<R>
where
    A: Copy + Send,
    B: Copy + Send,
    R: Send,
    F: Fn(std::ops::Range<usize>, &mut [A], &mut [B]) -> R + Sync + Send,
{
    let runs: Vec<_> = (0..len).step_by(BLOCK_ELEMS).map(|s| s..(s + BLOCK_ELEMS).min(len)).collect();
    let a = split_runs(out_a, runs.iter().map(|r| r.len()));
    let b = split_runs(out_b, runs.iter().map(|r| r.len()));
    let items: Vec<_> = runs.into_iter().zip(a).zip(b).collect();
    map_ordered(items, |((r, a), b)| f(r, a, b))
}

/// The exact sum of per-block partials: the same whatever the grouping of the blocks.
pub(crate) fn exact_sum(parts: impl IntoIterator<Item = f64>) -> ExactSum {
    let mut s = ExactSum::default();
    parts.into_iter().for_each(|p| s.add(p));
    s
}
