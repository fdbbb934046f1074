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
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped 8 bad file(s)"));
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
