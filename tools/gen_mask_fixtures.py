"""Writes the mixed mask tree of crates/xent-cli/tests/data/masks/ and its expected counts.

Every file is read back by the library its format's users read it with (nibabel for NIfTI,
tifffile for TIFF, Pillow for PNG, NumPy for .npy) and the labels counted with np.bincount; the
test `mixed_tree_equals_numpy_bincount` (tests/weights_cli.rs) checks `xent weights` against it.

    pip install numpy nibabel tifffile imagecodecs pillow
    python tools/gen_mask_fixtures.py crates/xent-cli/tests/data/masks
"""
import gzip, json, os, shutil, struct, sys
import numpy as np, nibabel as nib, tifffile
from PIL import Image

K, IGNORE = 6, 255
out = sys.argv[1]
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
rng = np.random.default_rng(21)


def labels(shape, dtype=np.uint8):
    a = rng.choice([0, 0, 0, 1, 2, 3, 4, 5], size=shape).astype(dtype)
    a.flat[rng.integers(0, a.size, a.size // 20)] = IGNORE
    return a


def nifti(name, a, cls=nib.Nifti1Image, endian="<", scale=None):
    hdr = (nib.Nifti1Header if cls is nib.Nifti1Image else nib.Nifti2Header)(endianness=endian)
    hdr.set_data_dtype(a.dtype)
    path = os.path.join(out, name.removesuffix(".gz"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nib.save(cls(a, np.eye(4), hdr), path)
    if scale:  # nibabel writes integer data unscaled: set scl_slope / scl_inter by hand
        raw = bytearray(open(path, "rb").read())
        raw[112:120] = struct.pack(endian + "ff", *scale)
        open(path, "wb").write(raw)
    if name.endswith(".gz"):
        with open(path, "rb") as f, gzip.open(path + ".gz", "wb") as g:
            g.write(f.read())
        os.remove(path)


nifti("ct/vol_u8.nii.gz", labels((20, 16, 12)))
nifti("ct/vol_i16_big_endian.nii", labels((12, 10, 8), np.int16), endian=">")
nifti("ct/vol_f32.nii.gz", labels((10, 9, 8)).astype(np.float32))
# Stored 0..2 (and 127), labels 2 * x + 1 = 1, 3, 5 (and 255) through scl_slope / scl_inter.
stored = rng.choice([0, 1, 2], size=(9, 8, 7)).astype(np.uint8)
stored.flat[::17] = 127
nifti("ct/vol_scaled.nii.gz", stored, scale=(2.0, 1.0))
nifti("ct/nifti2_4d.nii.gz", labels((10, 8, 6, 3), np.int32), cls=nib.Nifti2Image)
nifti("ct/nifti2_u16_big_endian.nii", labels((7, 6, 5), np.uint16), cls=nib.Nifti2Image, endian=">")

geo = [(33550, "d", 3, (10.0, 10.0, 0.0), True)]  # ModelPixelScaleTag: a GeoTIFF tag
tifs = [
    ("strip_none_u8.tif", labels((40, 30)), {}),
    ("strip_lzw_u16.tif", labels((40, 30), np.uint16), {"compression": "lzw", "rowsperstrip": 7}),
    ("strip_deflate_i32.tif", labels((33, 21), np.int32), {"compression": "zlib"}),
    ("strip_packbits_u8.tif", labels((50, 37)), {"compression": "packbits"}),
    ("tiled_lzw_edge_u8.tif", labels((300, 200)), {"compression": "lzw", "tile": (64, 64)}),
    # This file and pages3_overview.tif make tiff 0.11.3 fail with "no lzw end code found" (image-tiff #395).
    ("tiled_lzw_predictor_u16.tif", labels((70, 90), np.uint16), {"compression": "lzw", "tile": (32, 32), "predictor": 2}),
    ("tiled_deflate_u32.tif", labels((40, 50), np.uint32), {"compression": "zlib", "tile": (16, 32)}),
    ("bigtiff_big_endian_lzw_tiled_i16.tif", labels((45, 35), np.int16),
     {"compression": "lzw", "tile": (16, 16), "bigtiff": True, "byteorder": ">", "predictor": 2}),
    ("big_endian_strip_u16.tif", labels((20, 30), np.uint16), {"byteorder": ">"}),
]
os.makedirs(os.path.join(out, "geo"))
for name, a, kw in tifs:
    tifffile.imwrite(os.path.join(out, "geo", name), a, extratags=geo, **kw)
# Three pages of labels and a reduced-resolution overview (not labels: xent passes over it).
with tifffile.TiffWriter(os.path.join(out, "geo", "pages3_overview.tif")) as t:
    pages = labels((3, 24, 20))
    for p in pages:
        t.write(p, compression="lzw", tile=(16, 16))
    t.write(pages[0, ::2, ::2], subfiletype=1)

os.makedirs(os.path.join(out, "png"))
Image.fromarray(labels((17, 23))).save(os.path.join(out, "png", "gray8.png"))
os.makedirs(os.path.join(out, "npy"))
np.save(os.path.join(out, "npy", "stack_i64.npy"), labels((2, 9, 11), np.int64))
np.save(os.path.join(out, "npy", "fortran_u16.npy"), np.asfortranarray(labels((13, 8), np.uint16)))


def read(path):
    if path.endswith((".nii", ".nii.gz")):
        a = np.asanyarray(nib.load(path).dataobj)
        return (a.shape[3] if a.ndim == 4 else 1), a
    if path.endswith(".tif"):
        with tifffile.TiffFile(path) as t:
            pages = [p.asarray() for p in t.pages if not p.subfiletype & 0b101]
        return len(pages), np.stack(pages)
    if path.endswith(".png"):
        return 1, np.asarray(Image.open(path))
    a = np.load(path)
    return (a.shape[0] if a.ndim > 2 else 1), a


files, total, images = {}, np.zeros(K + 1, np.int64), 0
for root, _, names in sorted(os.walk(out)):
    for n in sorted(names):
        path = os.path.join(root, n)
        imgs, a = read(path)
        v = np.asarray(a).astype(np.float64).ravel()
        assert np.all(v == np.round(v)), path
        v = v.astype(np.int64)
        c = np.bincount(np.where(v == IGNORE, K, v), minlength=K + 1)
        assert c.size == K + 1, (path, c)
        files[os.path.relpath(path, out)] = {"images": imgs, "counts": c[:K].tolist(), "ignored": int(c[K])}
        total += c
        images += imgs
expected = {"classes": K, "ignore_index": IGNORE, "images": images, "counts": total[:K].tolist(),
            "ignored": int(total[K]), "files": files}
with open(os.path.join(os.path.dirname(out.rstrip("/")), "masks_expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
print(json.dumps({k: v for k, v in expected.items() if k != "files"}), len(files), "files")
