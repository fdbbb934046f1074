"""Writes the mask sets of BENCHMARKS.md's `xent weights` throughput: 1000 PNG masks of 512 x 512
(5 disc-shaped classes on background), 100 NIfTI `.nii.gz` volumes of 128^3 uint8 (3 balls), and
100 noisy ones (every voxel drawn at random: the worst case for inflating).

    pip install numpy nibabel pillow
    python tools/gen_mask_bench.py /tmp/masks && time xent weights /tmp/masks/png --classes 6
"""
import os, sys
import numpy as np, nibabel as nib
from PIL import Image

out = sys.argv[1]
for d in ["png", "nii", "nii_noisy"]:
    os.makedirs(os.path.join(out, d), exist_ok=True)
rng = np.random.default_rng(0)
yy, xx = np.mgrid[:512, :512]
for i in range(1000):
    m = np.zeros((512, 512), np.uint8)
    for k in range(1, 6):
        cy, cx, r = *rng.integers(0, 512, 2), rng.integers(10, 80)
        m[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = k
    Image.fromarray(m).save(os.path.join(out, "png", f"{i:04d}.png"))
z, y, x = np.mgrid[:128, :128, :128]
for i in range(100):
    m = np.zeros((128, 128, 128), np.uint8)
    for k in range(1, 4):
        c, r = rng.integers(0, 128, 3), rng.integers(8, 30)
        m[(z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 < r * r] = k
    nib.save(nib.Nifti1Image(m, np.eye(4)), os.path.join(out, "nii", f"{i:03d}.nii.gz"))
    noisy = rng.choice([0, 0, 0, 0, 0, 0, 1, 2, 3], size=(128, 128, 128)).astype(np.uint8)
    nib.save(nib.Nifti1Image(noisy, np.eye(4)), os.path.join(out, "nii_noisy", f"{i:03d}.nii.gz"))
