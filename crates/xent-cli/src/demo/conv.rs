//! The network's convolutions as a candle custom op: stride 1, any padding and dilation, each
//! image lowered to columns (im2col) and multiplied by faer, forward and backward.
//!
//! Why: candle 0.11's CPU `conv2d` backward took 2.9 s of a 3.8 s demo epoch (its gradient of
//! the kernel is a convolution of the batch with itself, without matrix products). Here, per
//! image `n` with columns `X_n` (`[Cin k k, H W]`):
//! ```text
//! Y_n = W X_n        dW = sum_n dY_n X_n^T (in image order)        dX_n = col2im(W^T dY_n)
//! ```
//! Images run in parallel; each product is sequential and `dW` is summed in a fixed order, so the
//! bits do not depend on the thread count.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Storage, Tensor};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// A convolution of `[N, Cin, H, W]` by `[Cout, Cin, k, k]`, stride 1.
#[derive(Debug, Clone, Copy)]
pub(super) struct Conv {
    pub(super) pad: usize,
    pub(super) dilation: usize,
}

/// The sizes of one convolution.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    k: usize,
    ho: usize,
    wo: usize,
    pad: usize,
    dil: usize,
}

impl Geometry {
    /// Rows of an image's columns: `Cin k k`.
    fn rows(&self) -> usize {
        self.cin * self.k * self.k
    }

    /// `cols[(ci, ky, kx), (oy, ox)] = x[ci, oy + ky d - p, ox + kx d - p]` (0 outside).
    fn im2col(&self, x: &[f32], cols: &mut [f32]) {
        let (hw, o) = (self.h * self.w, self.ho * self.wo);
        for ci in 0..self.cin {
            for ky in 0..self.k {
                for kx in 0..self.k {
                    let row = &mut cols[((ci * self.k + ky) * self.k + kx) * o..][..o];
                    for oy in 0..self.ho {
                        let iy = (oy + ky * self.dil).wrapping_sub(self.pad);
                        let out = &mut row[oy * self.wo..][..self.wo];
                        if iy >= self.h {
                            out.fill(0.0);
                            continue;
                        }
                        let src = &x[ci * hw + iy * self.w..][..self.w];
                        for (ox, v) in out.iter_mut().enumerate() {
                            let ix = (ox + kx * self.dil).wrapping_sub(self.pad);
                            *v = if ix < self.w { src[ix] } else { 0.0 };
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`im2col`](Self::im2col): adds each column entry back onto its pixel.
    fn col2im(&self, cols: &[f32], x: &mut [f32]) {
        let (hw, o) = (self.h * self.w, self.ho * self.wo);
        x.fill(0.0);
        for ci in 0..self.cin {
            for ky in 0..self.k {
                for kx in 0..self.k {
                    let row = &cols[((ci * self.k + ky) * self.k + kx) * o..][..o];
                    for oy in 0..self.ho {
                        let iy = (oy + ky * self.dil).wrapping_sub(self.pad);
                        if iy >= self.h {
                            continue;
                        }
                        let dst = &mut x[ci * hw + iy * self.w..][..self.w];
                        for (ox, &v) in row[oy * self.wo..][..self.wo].iter().enumerate() {
                            let ix = (ox + kx * self.dil).wrapping_sub(self.pad);
                            if ix < self.w {
                                dst[ix] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `dst = a b` (`dst` row-major `[m, n]`), on one thread.
fn product(dst: &mut [f32], m: usize, n: usize, a: MatRef<'_, f32>, b: MatRef<'_, f32>) {
    matmul(MatMut::from_row_major_slice_mut(dst, m, n), Accum::Replace, a, b, 1.0f32, Par::Seq);
}

/// A contiguous f32 CPU tensor's values.
fn values<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("the demo's convolution takes contiguous f32 tensors"),
    }
}

impl Conv {
    fn geometry(&self, x: &[usize], w: &[usize]) -> Result<Geometry> {
        let (&[n, cin, h, wd], &[cout, cin2, k, k2]) = (x, w) else {
            candle_core::bail!("conv: input [N, C, H, W] and kernel [Cout, C, k, k], not {x:?} and {w:?}")
        };
        let span = self.dilation * (k.max(1) - 1);
        if cin != cin2 || k != k2 || h + 2 * self.pad < span + 1 || wd + 2 * self.pad < span + 1 {
            candle_core::bail!("conv: input {x:?} and kernel {w:?} do not fit");
        }
        let (ho, wo) = (h + 2 * self.pad - span, wd + 2 * self.pad - span);
        Ok(Geometry { n, cin, h, w: wd, cout, k, ho, wo, pad: self.pad, dil: self.dilation })
    }
}

impl CustomOp2 for Conv {
    fn name(&self) -> &'static str {
        "xent-demo-conv"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.geometry(xl.dims(), wl.dims())?;
        let (x, w) = (values(xs, xl)?, values(ws, wl)?);
        let (o, rows) = (g.ho * g.wo, g.rows());
        let mut y = vec![0f32; g.n * g.cout * o];
        let wm = MatRef::from_row_major_slice(w, g.cout, rows);
        y.par_chunks_mut(g.cout * o).zip(x.par_chunks(g.cin * g.h * g.w)).for_each_init(
            || vec![0f32; rows * o],
            |cols, (yn, xn)| {
                g.im2col(xn, cols);
                product(yn, g.cout, o, wm, MatRef::from_row_major_slice(cols, rows, o));
            },
        );
        Ok((CpuStorage::F32(y), Shape::from((g.n, g.cout, g.ho, g.wo))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (x, w, grad) = (x.contiguous()?, w.contiguous()?, grad.contiguous()?);
        let g = self.geometry(x.dims(), w.dims())?;
        let (o, rows) = (g.ho * g.wo, g.rows());
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = w.storage_and_layout();
        let (gs, gl) = grad.storage_and_layout();
        let (Storage::Cpu(xs), Storage::Cpu(ws), Storage::Cpu(gs)) = (&*xs, &*ws, &*gs) else {
            candle_core::bail!("the demo's convolution runs on the CPU")
        };
        let (xv, wv, gv) = (values(xs, xl)?, values(ws, wl)?, values(gs, gl)?);
        let wm = MatRef::from_row_major_slice(wv, g.cout, rows);
        let mut dx = vec![0f32; g.n * g.cin * g.h * g.w];
        let mut dw_each = vec![0f32; g.n * g.cout * rows];
        dx.par_chunks_mut(g.cin * g.h * g.w)
            .zip(dw_each.par_chunks_mut(g.cout * rows))
            .zip(xv.par_chunks(g.cin * g.h * g.w).zip(gv.par_chunks(g.cout * o)))
            .for_each_init(
                || vec![0f32; 2 * rows * o],
                |buf, ((dxn, dwn), (xn, gn))| {
                    let (cols, dcols) = buf.split_at_mut(rows * o);
                    g.im2col(xn, cols);
                    let gm = MatRef::from_row_major_slice(gn, g.cout, o);
                    product(dwn, g.cout, rows, gm, MatRef::from_row_major_slice(cols, rows, o).transpose());
                    product(dcols, rows, o, wm.transpose(), gm);
                    g.col2im(dcols, dxn);
                },
            );
        let mut dw = vec![0f32; g.cout * rows];
        for each in dw_each.chunks_exact(g.cout * rows) {
            dw.iter_mut().zip(each).for_each(|(a, b)| *a += b);
        }
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, (g.n, g.cin, g.h, g.w), dev)?),
            Some(Tensor::from_vec(dw, (g.cout, g.cin, g.k, g.k), dev)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Values and both gradients equal candle's `conv2d` (within f32 rounding), for the
    /// network's shapes: 3x3, 3x3 dilated by 2, 1x1, and a padding that shrinks the image.
    #[test]
    fn equals_candles_conv2d() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let mut seed = 1u32;
        let mut rand = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                    (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
                })
                .collect()
        };
        for (n, cin, h, w, cout, k, pad, dil) in
            [(3, 2, 9, 7, 4, 3, 1, 1), (2, 3, 8, 8, 5, 3, 2, 2), (2, 4, 5, 6, 3, 1, 0, 1), (1, 2, 7, 9, 2, 3, 0, 1)]
        {
            let x = Var::from_vec(rand(n * cin * h * w), (n, cin, h, w), &dev)?;
            let wk = Var::from_vec(rand(cout * cin * k * k), (cout, cin, k, k), &dev)?;
            let mine = x.apply_op2(&wk, Conv { pad, dilation: dil })?;
            let theirs = x.conv2d(&wk, pad, 1, dil, 1)?;
            let up = Tensor::from_vec(rand(mine.elem_count()), mine.dims(), &dev)?;
            let (gm, gt) = ((&mine * &up)?.sum_all()?.backward()?, (&theirs * &up)?.sum_all()?.backward()?);
            let close = |a: &Tensor, b: &Tensor| -> anyhow::Result<f32> {
                Ok((a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?)
            };
            assert_eq!(mine.dims(), theirs.dims());
            assert!(close(&mine, &theirs)? < 1e-5, "values {n} {cin} {h} {w} {cout} {k} {pad} {dil}");
            for v in [&x, &wk] {
                let (a, b) = (gm.get(v).unwrap(), gt.get(v).unwrap());
                assert!(close(a, b)? < 1e-5, "gradient of {:?}", v.dims());
            }
        }
        Ok(())
    }
}
