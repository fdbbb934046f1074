//! End-to-end tests of `xent weights` on generated mask trees: every format, sharded runs, and
//! each kind of bad file.

mod common;

use common::*;
use png::{BitDepth, ColorType};
use std::path::Path;

const K: u64 = 4;

/// Writes one mask in every supported format under `dir`; returns the per-class counts and
/// the ignored pixels it holds.
fn fixture_tree(dir: &Path, seed: u64) -> (Vec<u64>, u64) {
    let (w, h) = (13usize, 7usize);
    let mut all = Vec::new();
    let mut add = |v: &[u64]| all.extend_from_slice(v);
    std::fs::create_dir_all(dir.join("nested/deeper")).unwrap();
    let l = labels(seed, w * h, K);
    add(&l);
    png(
        &dir.join("a_gray8.png"),
        w as u32,
        h as u32,
        ColorType::Grayscale,
        BitDepth::Eight,
        &l.iter().map(|&v| v as u8).collect::<Vec<_>>(),
        None,
    );
    let l = labels(seed + 1, w * h, K);
    add(&l);
    let be: Vec<u8> = l.iter().flat_map(|&v| (v as u16).to_be_bytes()).collect();
    png(&dir.join("nested/b_gray16.PNG"), w as u32, h as u32, ColorType::Grayscale, BitDepth::Sixteen, &be, None);
    // A palette image: the index is the class (as Pascal VOC); 255 gets a palette entry too.
    let l = labels(seed + 2, w * h, K);
    add(&l);
    png(
        &dir.join("nested/c_palette.png"),
        w as u32,
        h as u32,
        ColorType::Indexed,
        BitDepth::Eight,
        &l.iter().map(|&v| v as u8).collect::<Vec<_>>(),
        Some(vec![7u8; 256 * 3]),
    );
    // A 4-bit palette image (packed two pixels a byte), labels 0..K only.
    let l: Vec<u64> = labels(seed + 3, w * h, K).into_iter().map(|v| v % K).collect();
    add(&l);
    let packed: Vec<u8> = l
        .chunks(w)
        .flat_map(|row| {
            row.chunks(2).map(|p| ((p[0] as u8) << 4) | p.get(1).map_or(0, |&v| v as u8)).collect::<Vec<_>>()
        })
        .collect();
    png(
        &dir.join("nested/deeper/d_palette4.png"),
        w as u32,
        h as u32,
        ColorType::Indexed,
        BitDepth::Four,
        &packed,
        Some(vec![0u8; 16 * 3]),
    );
    for (i, (descr, size)) in [("|u1", 1), ("<u2", 2), ("<i4", 4), ("<i8", 8)].into_iter().enumerate() {
        let l = labels(seed + 10 + i as u64, 2 * w * h, K);
        add(&l);
        let data: Vec<u8> = l.iter().flat_map(|&v| v.to_le_bytes()[..size].to_vec()).collect();
        npy(&dir.join(format!("nested/e{i}.npy")), descr, &[2, h, w], &data);
    }
    std::fs::write(dir.join("nested/notes.txt"), "not a mask").unwrap();
    let mut counts = vec![0u64; K as usize];
    let mut ignored = 0;
    for v in all {
        if v == 255 {
            ignored += 1;
        } else {
            counts[v as usize] += 1;
        }
    }
    (counts, ignored)
}

#[test]
fn every_format_is_counted_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (counts, ignored) = fixture_tree(dir.path(), 1);
    let v = json(&xent(&["weights", dir.path().to_str().unwrap(), "--classes", "4", "--format", "json"]));
    assert_eq!(v["counts"], serde_json::json!(counts));
    assert_eq!(v["ignored"], ignored);
    assert_eq!(v["images"], 4 + 4 * 2);
    assert_eq!(v["num_classes"], 4);
    assert_eq!(v["ignore_index"], 255);
    assert_eq!(v["scheme"], "inverse_frequency");
    let w: Vec<f64> = serde_json::from_value(v["weights"].clone()).unwrap();
    let inv: Vec<f64> = counts.iter().map(|&c| 1.0 / c as f64).collect();
    let s: f64 = inv.iter().sum();
    for (a, b) in w.iter().zip(inv) {
        assert!((a - b / s).abs() < 1e-15);
    }
    // The table and the CSV show the same counts.
    let table = xent(&["weights", dir.path().to_str().unwrap(), "--classes", "4"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains(&counts[0].to_string()));
    let csv = xent(&["weights", dir.path().to_str().unwrap(), "--classes", "4", "--format", "csv"]);
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert_eq!(csv.lines().count(), 5);
    assert!(csv.lines().nth(2).unwrap().starts_with(&format!("1,{},", counts[1])));
}

#[test]
fn merged_shards_give_the_single_run_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    fixture_tree(&a, 10);
    fixture_tree(&b, 20);
    let (ca, cb) = (dir.path().join("a.json"), dir.path().join("b.json"));
    for (d, c) in [(&a, &ca), (&b, &cb)] {
        let out = xent(&["weights", d.to_str().unwrap(), "--classes", "4", "--save-counts", c.to_str().unwrap()]);
        assert!(out.status.success());
    }
    for scheme in ["inverse_frequency", "median_frequency", "effective_number"] {
        let single = json(&xent(&[
            "weights",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--classes",
            "4",
            "--format",
            "json",
            "--scheme",
            scheme,
        ]));
        let merged = json(&xent(&[
            "weights",
            "--counts",
            ca.to_str().unwrap(),
            cb.to_str().unwrap(),
            "--format",
            "json",
            "--scheme",
            scheme,
        ]));
        assert_eq!(single["weights"], merged["weights"], "{scheme}");
        assert_eq!(single["counts"], merged["counts"]);
    }
}

#[test]
fn output_files_are_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    fixture_tree(&dir.path().join("m"), 3);
    let out_file = dir.path().join("w.json");
    let out = xent(&[
        "weights",
        dir.path().join("m").to_str().unwrap(),
        "--classes",
        "4",
        "--format",
        "json",
        "--output",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success() && out.stdout.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(v["num_classes"], 4);
    // An output in a folder that does not exist: an error, and no file anywhere.
    let missing = dir.path().join("no/such/dir/w.json");
    let out = xent(&[
        "weights",
        dir.path().join("m").to_str().unwrap(),
        "--classes",
        "4",
        "--output",
        missing.to_str().unwrap(),
    ]);
    assert_fails(&out, "w.json");
    assert!(!dir.path().join("no").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}

#[test]
fn bad_files_are_one_line_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = d.join("good.png");
    png(&good, 4, 2, ColorType::Grayscale, BitDepth::Eight, &[0, 1, 2, 3, 0, 1, 255, 2], None);
    let full = std::fs::read(&good).unwrap();
    std::fs::write(d.join("truncated.png"), &full[..full.len() / 2]).unwrap();
    std::fs::write(d.join("garbage.png"), b"this is no png").unwrap();
    npy(&d.join("float.npy"), "<f4", &[2], &[0; 8]);
    npy(&d.join("short.npy"), "<i8", &[4], &[0; 16]);
    std::fs::write(d.join("magic.npy"), b"\x93NUMPX\x01\x00").unwrap();
    npy(&d.join("oob.npy"), "|u1", &[2, 3], &[0, 1, 2, 3, 9, 0]);
    png(&d.join("rgb.png"), 1, 1, ColorType::Rgb, BitDepth::Eight, &[1, 2, 3], None);
    let save = d.join("counts.json");
    let cases: [(&str, &str); 7] = [
        ("truncated.png", "truncated.png"),
        ("garbage.png", "garbage.png"),
        ("float.npy", "float32"),
        ("short.npy", "short.npy"),
        ("magic.npy", "bad magic"),
        ("oob.npy", "label 9 at row 1, column 1"),
        ("rgb.png", "--colormap"),
    ];
    for (file, needle) in cases {
        let p = d.join(file);
        let out = xent(&[
            "weights",
            good.to_str().unwrap(),
            p.to_str().unwrap(),
            "--classes",
            "4",
            "--save-counts",
            save.to_str().unwrap(),
        ]);
        assert_fails(&out, needle);
        assert_fails(&out, file);
        assert!(!save.exists(), "no counts written after an error");
    }
    assert_fails(&xent(&["weights", d.join("nope").to_str().unwrap(), "--classes", "4"]), "no such file");
    let empty = d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_fails(&xent(&["weights", empty.to_str().unwrap(), "--classes", "4"]), "no mask files");
    assert_fails(&xent(&["weights", good.to_str().unwrap()]), "--classes");
    assert_fails(&xent(&["weights", good.to_str().unwrap(), "--classes", "4", "--scheme", "magic"]), "scheme");
    std::fs::write(d.join("bad_counts.json"), "{").unwrap();
    assert_fails(&xent(&["weights", "--counts", d.join("bad_counts.json").to_str().unwrap()]), "bad_counts.json");
    // A header that claims a huge image is refused before decoding.
    npy(&d.join("huge.npy"), "|u1", &[1 << 20, 1 << 20], &[]);
    assert_fails(&xent(&["weights", d.join("huge.npy").to_str().unwrap(), "--classes", "4"]), "over the limit");

    // --skip-bad: the good file counts, the bad ones are reported.
    let out = xent(&["weights", d.to_str().unwrap(), "--classes", "4", "--format", "json", "--skip-bad"]);
    let v = json(&out);
    assert_eq!(v["counts"], serde_json::json!([2, 2, 2, 1]));
    assert_eq!(v["skipped"].as_array().unwrap().len(), 8);
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped 8 file(s)"));
}

#[test]
fn rgb_masks_map_through_a_colormap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("map.json"), "[[0,0,0],[128,0,0],[0,128,0]]").unwrap();
    png(&d.join("rgb.png"), 3, 1, ColorType::Rgb, BitDepth::Eight, &[0, 0, 0, 128, 0, 0, 128, 0, 0], None);
    let v = json(&xent(&[
        "weights",
        d.join("rgb.png").to_str().unwrap(),
        "--classes",
        "3",
        "--colormap",
        d.join("map.json").to_str().unwrap(),
        "--format",
        "json",
        "--absent",
        "largest",
    ]));
    assert_eq!(v["counts"], serde_json::json!([1, 2, 0]));
    png(&d.join("odd.png"), 1, 1, ColorType::Rgb, BitDepth::Eight, &[9, 9, 9], None);
    assert_fails(
        &xent(&[
            "weights",
            d.join("odd.png").to_str().unwrap(),
            "--classes",
            "3",
            "--colormap",
            d.join("map.json").to_str().unwrap(),
        ]),
        "colour [9, 9, 9]",
    );
}

/// The walk visits each folder and file once however it is reached: a link back up the tree is
/// listed once and not followed, a hard link and a symbolic link to a counted file add nothing;
/// a FIFO named like a mask is listed as skipped, never opened (the run does not block).
#[test]
fn the_walk_counts_each_file_once_and_never_opens_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("masks");
    std::fs::create_dir_all(d.join("sub")).unwrap();
    png(&d.join("a.png"), 4, 4, ColorType::Grayscale, BitDepth::Eight, &[1; 16], None);
    png(&d.join("sub/b.png"), 4, 4, ColorType::Grayscale, BitDepth::Eight, &[0; 16], None);
    std::os::unix::fs::symlink("..", d.join("sub/loop")).unwrap();
    std::os::unix::fs::symlink(d.join("a.png"), d.join("sub/again.png")).unwrap();
    std::fs::hard_link(d.join("a.png"), d.join("hard.png")).unwrap();
    let fifo = d.join("x.png");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let out = xent(&["weights", d.to_str().unwrap(), "--classes", "2", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    assert_eq!(v["images"], 2, "{v}");
    assert_eq!(v["counts"], serde_json::json!([16, 16]), "{v}");
    let skipped: Vec<String> = v["skipped"].as_array().unwrap().iter().map(|s| s["error"].to_string()).collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped.iter().any(|s| s.contains("x.png") && s.contains("not a regular file")), "{skipped:?}");
    assert!(skipped.iter().any(|s| s.contains("loop") && s.contains("link loop")), "{skipped:?}");
    // `xent loss` refuses a FIFO as an input rather than waiting for a writer.
    let t = d.join("t.npy");
    npy(&t, "<i8", &[1], &0i64.to_le_bytes());
    let f = fifo.to_str().unwrap();
    assert_fails(
        &xent(&["loss", "--loss", "cross-entropy", "--input", f, "--target", t.to_str().unwrap()]),
        "not a regular file",
    );
}

/// `[N, H, W]` in Fortran order (`np.save(x.T)`'s layout for `x.T.T`) and big-endian count as the
/// same labels in C order, and `xent loss` reads `>f4` and Fortran-order logits as NumPy does.
#[test]
fn npy_in_fortran_order_and_big_endian_read_as_numpy_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (n, h, w) = (2usize, 3usize, 4usize);
    let labels: Vec<u8> = (0..n * h * w).map(|i| ((i * 7 + i / 5) % 3) as u8).collect();
    // Element (a, b, c) at a + n (b + h c) in Fortran order.
    let fortran = |v: &[u8], size: usize| -> Vec<u8> {
        let mut out = vec![0u8; v.len()];
        for a in 0..n {
            for b in 0..h {
                for c in 0..w {
                    let (ci, fi) = ((a * h + b) * w + c, a + n * (b + h * c));
                    out[fi * size..(fi + 1) * size].copy_from_slice(&v[ci * size..(ci + 1) * size]);
                }
            }
        }
        out
    };
    let i4_be: Vec<u8> = labels.iter().flat_map(|&v| i32::from(v).to_be_bytes()).collect();
    npy(&d.join("c.npy"), "|u1", &[n, h, w], &labels);
    npy_ordered(&d.join("f.npy"), "|u1", true, &[n, h, w], &fortran(&labels, 1));
    npy(&d.join("be.npy"), ">i4", &[n, h, w], &i4_be);
    npy_ordered(&d.join("fbe.npy"), ">i4", true, &[n, h, w], &fortran(&i4_be, 4));
    let count = |f: &str| {
        let out = xent(&[
            "weights",
            d.join(f).to_str().unwrap(),
            "--classes",
            "3",
            "--scheme",
            "median_frequency",
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "{f}: {}", String::from_utf8_lossy(&out.stderr));
        let v = json(&out);
        (v["counts"].clone(), v["image_pixels"].clone(), v["weights"].clone())
    };
    let want = count("c.npy");
    for f in ["f.npy", "be.npy", "fbe.npy"] {
        assert_eq!(count(f), want, "{f}");
    }
    // Logits [n, 3, w] for targets [n, w]: the same loss and gradient from every layout.
    let x: Vec<f32> = (0..n * 3 * w).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
    let t: Vec<u8> = (0..n * w).map(|i| (i % 3) as u8).collect();
    let le: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let be: Vec<u8> = x.iter().flat_map(|v| v.to_be_bytes()).collect();
    let xf = {
        // [n, 3, w] in Fortran order: (a, b, c) at a + n (b + 3 c).
        let mut out = vec![0u8; le.len()];
        for a in 0..n {
            for b in 0..3 {
                for c in 0..w {
                    let (ci, fi) = ((a * 3 + b) * w + c, a + n * (b + 3 * c));
                    out[fi * 4..(fi + 1) * 4].copy_from_slice(&le[ci * 4..(ci + 1) * 4]);
                }
            }
        }
        out
    };
    npy(&d.join("t.npy"), "|u1", &[n, w], &t);
    npy(&d.join("x.npy"), "<f4", &[n, 3, w], &le);
    npy(&d.join("xbe.npy"), ">f4", &[n, 3, w], &be);
    npy_ordered(&d.join("xf.npy"), "<f4", true, &[n, 3, w], &xf);
    let loss = |f: &str| {
        let g = d.join(format!("g_{f}"));
        let out = xent(&[
            "loss",
            "--loss",
            "cross-entropy",
            "--input",
            d.join(f).to_str().unwrap(),
            "--target",
            d.join("t.npy").to_str().unwrap(),
            "--format",
            "json",
            "--chunk-mb",
            "1",
            "--grad-out",
            g.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{f}: {}", String::from_utf8_lossy(&out.stderr));
        (json(&out)["loss"].clone(), std::fs::read(g).unwrap())
    };
    let want = loss("x.npy");
    for f in ["xbe.npy", "xf.npy"] {
        assert_eq!(loss(f), want, "{f}");
    }
}

/// The mixed tree of `tests/data/masks` (NIfTI-1/2, `.nii`/`.nii.gz`, either byte order, float
/// and scaled labels; TIFF striped/tiled, LZW/Deflate/PackBits, BigTIFF, big-endian, pages and an
/// overview; PNG; `.npy`), written and counted by `tools/gen_mask_fixtures.py` with nibabel,
/// tifffile, Pillow and NumPy's bincount: each file, and the whole tree, count the same here.
#[test]
fn mixed_tree_equals_numpy_bincount() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("masks_expected.json")).unwrap()).unwrap();
    let check = |path: &Path, want: &serde_json::Value| {
        let out = xent(&["weights", path.to_str().unwrap(), "--classes", "6", "--format", "json"]);
        let got = json(&out);
        for key in ["images", "counts", "ignored"] {
            assert_eq!(got[key], want[key], "{}: {key}", path.display());
        }
    };
    let files = want["files"].as_object().unwrap();
    assert_eq!(files.len(), 19);
    for (name, w) in files {
        check(&data.join("masks").join(name), w);
    }
    check(&data.join("masks"), &want);
}

/// NIfTI volumes that must be refused, each with a message naming the problem.
#[test]
fn bad_nifti_files_are_errors_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/masks/ct/vol_i16_big_endian.nii"))
        .unwrap();
    let put = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let gz = |bytes: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    };
    // Big-endian NIfTI-1: dim at 40 (i16), datatype at 70, scl_slope at 112.
    let with = |at: usize, v: &[u8]| {
        let mut b = good.clone();
        b[at..at + v.len()].copy_from_slice(v);
        b
    };
    let mut float = with(70, &16i16.to_be_bytes());
    float[72..74].copy_from_slice(&32i16.to_be_bytes());
    float.truncate(352);
    let voxels: Vec<u8> = (0..12 * 10 * 8).flat_map(|i| if i == 5 { 2.5f32 } else { 1.0 }.to_be_bytes()).collect();
    float.extend(voxels);
    let mut longer = good.clone();
    longer.extend([0u8; 7]);
    let cases = [
        (put("short.nii", &good[..good.len() - 3]), "needs"),
        (put("longer.nii", &longer), "needs"),
        (put("truncated.nii.gz", &gz(&good)[..200]), "truncated"),
        (put("runs_on.nii.gz", &gz(&longer)), "runs on past"),
        (put("huge.nii.gz", &gz(&with(42, &[0x7f, 0xff, 0x7f, 0xff, 0x7f, 0xff])[..400])), "over the limit"),
        (put("zero_dim.nii", &with(44, &0i16.to_be_bytes())), "dim[2] is 0"),
        (put("complex.nii", &with(70, &32i16.to_be_bytes())), "datatype 32"),
        (put("not_nifti.nii", &[7u8; 400]), "not a NIfTI"),
        (put("pair.nii", &with(344, b"ni1\0")), "two-file"),
        (
            put("inf_inter.nii", &{
                let mut b = with(112, &2f32.to_be_bytes());
                b[116..120].copy_from_slice(&f32::INFINITY.to_be_bytes());
                b
            }),
            "scl_inter",
        ),
        (put("float.nii.gz", &gz(&float)), "voxel (5, 0, 0) is 2.5, not an integer label"),
        (
            put("bad_crc.nii.gz", &{
                let mut b = gz(&good);
                let n = b.len();
                b[n - 6] ^= 1;
                b
            }),
            "corrupt",
        ),
    ];
    for (path, needle) in &cases {
        let out = xent(&["weights", path, "--classes", "6"]);
        assert_fails(&out, needle);
        assert!(String::from_utf8_lossy(&out.stderr).contains(path.rsplit('/').next().unwrap()), "{path}");
    }
}

/// `--save-counts FILE --resume`: a run killed with SIGKILL at any point (while walking,
/// counting, or rewriting FILE) and resumed, again and again, ends with the counts and weights of
/// an uninterrupted run, bit for bit.
#[test]
fn a_run_killed_anywhere_resumes_to_the_same_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (masks, ck) = (dir.path().join("masks"), dir.path().join("counts.json"));
    std::fs::create_dir(&masks).unwrap();
    let n = 6000;
    for i in 0..n {
        let l: Vec<u8> = labels(i, 64, K).into_iter().map(|v| v as u8).collect();
        npy(&masks.join(format!("{i:05}.npy")), "|u1", &[8, 8], &l);
    }
    let args = ["weights", masks.to_str().unwrap(), "--classes", "4", "--format", "json"];
    let reference = json(&xent(&args));
    let resumed: Vec<&str> = args.iter().copied().chain(["--save-counts", ck.to_str().unwrap(), "--resume"]).collect();
    let covered = || -> usize {
        std::fs::read_to_string(&ck).map_or(0, |t| {
            let v: serde_json::Value = serde_json::from_str(&t).expect("the counts file is always whole");
            v["covered"].as_array().unwrap().len()
        })
    };
    // The wait grows only while a kill adds nothing to the saved counts: once kills land between
    // checkpoints, the same wait keeps landing there (each run resumes further), so how many
    // partial counts are seen does not hang on the machine's speed.
    let (mut wait, mut partial, mut kills, mut last_covered) = (std::time::Duration::from_millis(3), 0, 0, 0);
    loop {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_xent"))
            .args(&resumed)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(wait);
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        let c = covered();
        if c > last_covered && c < n as usize {
            partial += 1;
        } else {
            wait = wait.mul_f64(1.3);
        }
        last_covered = c;
    }
    eprintln!("{kills} kills, {partial} left a partial count");
    let last = json(&xent(&resumed));
    for key in ["images", "counts", "image_pixels", "ignored", "weights"] {
        assert_eq!(last[key], reference[key], "{key} after {kills} kills");
    }
    assert_eq!(covered(), n as usize);
    // A wait that grows by 1.3x cannot step over the span from the first checkpoint to the end
    // (about 6 checkpoints), so at least one kill leaves a partial count on any machine.
    assert!(partial >= 1, "none of {kills} kills left a partial count to resume from");
}

/// A file that changed (size or modification time) after it was counted stops `--resume`; so
/// does a counted file that is no longer among the inputs.
#[test]
fn resume_refuses_changed_or_missing_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let (masks, ck) = (dir.path().join("masks"), dir.path().join("counts.json"));
    fixture_tree(&masks, 5);
    let ck = ck.to_str().unwrap();
    let run = |paths: &[&Path]| {
        let mut a: Vec<&str> = vec!["weights", "--classes", "4", "--save-counts", ck, "--resume"];
        a.extend(paths.iter().map(|p| p.to_str().unwrap()));
        xent(&a)
    };
    assert!(run(&[&masks]).status.success());
    assert!(run(&[&masks]).status.success(), "resuming a finished run reads nothing and succeeds");
    let f = masks.join("a_gray8.png");
    let t = std::fs::metadata(&f).unwrap().modified().unwrap();
    std::fs::File::options().write(true).open(&f).unwrap().set_modified(t + std::time::Duration::from_secs(1)).unwrap();
    assert_fails(&run(&[&masks]), "a_gray8.png: changed since it was counted");
    std::fs::File::options().write(true).open(&f).unwrap().set_modified(t).unwrap();
    assert!(run(&[&masks]).status.success());
    std::io::Write::write_all(&mut std::fs::OpenOptions::new().append(true).open(&f).unwrap(), b"x").unwrap();
    assert_fails(&run(&[&masks]), "size");
    assert_fails(&run(&[&masks.join("nested")]), "not among this run's inputs");
}
