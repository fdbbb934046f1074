//! Hostile input for the `xent` binary: a table of bad files and options. Each must end with
//! exit code 2, one line naming the problem, no panic, and no output file left behind.

mod common;

use common::*;
use png::{BitDepth, ColorType};
use std::path::Path;

fn listing(d: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn every_bad_input_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    png(&d.join("good.png"), 4, 2, ColorType::Grayscale, BitDepth::Eight, &[0, 1, 2, 3, 0, 1, 255, 2], None);
    let full = std::fs::read(d.join("good.png")).unwrap();
    std::fs::write(d.join("truncated.png"), &full[..full.len() - 20]).unwrap();
    std::fs::write(d.join("empty.png"), b"").unwrap();
    std::fs::write(d.join("notes.npy"), b"\x93NUMPY\x01\x00\x10\x00{'descr': '<u1'").unwrap();
    npy(&d.join("float.npy"), "<f4", &[2], &[0; 8]);
    npy(&d.join("huge.npy"), "|u1", &[1_000_000, 1_000_000_000], &[]);
    npy(&d.join("overflow.npy"), "|u1", &[usize::MAX / 2, 3], &[]);
    npy(&d.join("oob.npy"), "|u1", &[2, 2], &[0, 1, 7, 0]);
    npy(&d.join("x.npy"), "<f4", &[2, 3], &f32_bytes(&[0.0; 6]));
    npy(&d.join("xi.npy"), "<i4", &[2, 3], &[0; 24]);
    npy(&d.join("t.npy"), "<i8", &[2], &i64_bytes(&[0, 1]));
    npy(&d.join("probs.npy"), "<f4", &[2, 3], &f32_bytes(&[0.5, 0.25, 0.25, 0.0, 1.0, 0.0]));
    npy(&d.join("t5.npy"), "<i8", &[5], &i64_bytes(&[0; 5]));
    npy(&d.join("xhuge.npy"), "<f4", &[1_000_000, 1_000_000_000], &[]);
    std::fs::write(d.join("bad.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}").unwrap();
    safetensors(&d.join("ok.safetensors"), &[("logits", "F32", vec![2, 3], f32_bytes(&[0.0; 6]))]);
    // NIfTI and TIFF: a truncated .nii.gz, a NIfTI-2 header claiming 10^15 voxels, a gzip bomb
    // (a header of 1000 voxels followed by 64 MiB of zeros), TIFF strips and tiles past the end.
    let nii = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/masks/ct/vol_u8.nii.gz")).unwrap();
    std::fs::write(d.join("truncated.nii.gz"), &nii[..nii.len() / 2]).unwrap();
    let mut n2 =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/masks/ct/nifti2_u16_big_endian.nii"))
            .unwrap();
    for (k, v) in [3i64, 100_000, 100_000, 100_000].iter().enumerate() {
        n2[16 + 8 * k..24 + 8 * k].copy_from_slice(&v.to_be_bytes());
    }
    std::fs::write(d.join("huge.nii"), &n2).unwrap();
    std::fs::write(d.join("bomb.nii.gz"), gzip_bomb()).unwrap();
    let (w4, l4) = ((256, 3, 4), (257, 3, 4));
    let strip = |offset: u32, count: u32| {
        [w4, l4, (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, offset), (278, 3, 4), (279, 4, count)]
    };
    let at = tiff_data_offset(8);
    tiff(&d.join("strip_offset.tif"), &strip(1 << 30, 16), &[0; 16]);
    tiff(&d.join("strip_past_end.tif"), &strip(at, 1000), &[0; 16]);
    let tiles = |offset: u32| {
        [w4, l4, (258, 3, 8), (259, 3, 5), (262, 3, 1), (322, 3, 16), (323, 3, 16), (324, 4, offset), (325, 4, 10)]
    };
    tiff(&d.join("tile_past_end.tif"), &tiles(tiff_data_offset(9) + 4), &[0; 10]);
    tiff(&d.join("tile_garbage.tif"), &tiles(tiff_data_offset(9)), &[0xff; 10]);
    tiff(
        &d.join("huge.tif"),
        &[
            (256, 4, 1 << 20),
            (257, 4, 1 << 20),
            (258, 3, 8),
            (259, 3, 1),
            (262, 3, 1),
            (273, 4, at),
            (278, 4, 1 << 20),
            (279, 4, 16),
        ],
        &[0; 16],
    );
    tiff(
        &d.join("rgb.tif"),
        &[w4, l4, (258, 3, 8), (259, 3, 1), (262, 3, 2), (273, 4, at), (277, 3, 3), (278, 3, 4), (279, 4, 48)],
        &[0; 48],
    );
    std::fs::write(d.join("header_only.tif"), b"II*\0\x08\0\0\0").unwrap();
    std::fs::create_dir(d.join("empty_dir")).unwrap();
    std::os::unix::fs::symlink(d.join("nowhere.png"), d.join("dangling.png")).unwrap();
    std::fs::write(d.join("a_file"), b"x").unwrap();
    let under_file = p("a_file/out.json"); // a "disk" that refuses the write: a path through a file
    let before = listing(d);
    let w = |extra: &[&str]| {
        let mut a = vec!["weights", "--classes", "4"];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let l = |x: &str, t: &str, extra: &[&str]| {
        let mut a = vec![
            "loss".to_string(),
            "--loss".into(),
            "cross-entropy".into(),
            "--input".into(),
            p(x),
            "--target".into(),
            p(t),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // Any loss on x.npy [2, 3].
    let m = |loss: &str, t: &str, extra: &[&str]| {
        let mut a = l("x.npy", t, extra);
        a[2] = loss.to_string();
        a
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (m("dice", "probs.npy", &[]), "a float target without --soft-label"),
        (m("tversky", "t.npy", &["--soft-label"]), "an integer target with --soft-label"),
        (m("focal", "t.npy", &["--soft-label"]), "--soft-label does not apply to --loss focal"),
        (m("dice-ce", "t.npy", &["--lambda-focal", "2"]), "--lambda-focal does not apply to --loss dice-ce"),
        (m("dice-ce", "t.npy", &["--reduction", "none"]), "reduction"),
        (m("dice-focal", "t.npy", &["--lambda-dice", "-1"]), "lambda_dice"),
        (m("generalized-dice", "t.npy", &[]), "batch"),
        (m("cross-entropy", "probs.npy", &["--ignore-index", "255"]), "ignore_index"),
        (w(&[&p("truncated.nii.gz")]), "truncated.nii.gz: truncated"),
        (w(&[&p("huge.nii")]), "over the limit"),
        (w(&[&p("bomb.nii.gz")]), "runs on past the header's 1000 voxels"),
        (w(&[&p("strip_offset.tif")]), "strip 0 at bytes 1073741824..+16 runs past the end"),
        (w(&[&p("strip_past_end.tif")]), "strip 0 at bytes 110..+1000 runs past the end"),
        (w(&[&p("tile_past_end.tif")]), "runs past the end of the file"),
        (w(&[&p("tile_garbage.tif")]), "corrupt LZW data"),
        (w(&[&p("huge.tif")]), "over the limit"),
        (w(&[&p("rgb.tif")]), "one band"),
        (w(&[&p("header_only.tif")]), "corrupt TIFF"),
        (w(&[&p("truncated.png")]), "truncated.png"),
        (w(&[&p("empty.png")]), "empty.png"),
        (w(&[&p("notes.npy")]), "notes.npy"),
        (w(&[&p("float.npy")]), "float32"),
        (w(&[&p("huge.npy")]), "over the limit"),
        (w(&[&p("overflow.npy")]), "overflows"),
        (w(&[&p("oob.npy")]), "label 7 at row 1, column 0"),
        (w(&[&p("empty_dir")]), "no mask files"),
        (w(&[&p("dangling.png")]), "dangling.png"),
        (w(&[&p("good.png"), "--output", &under_file]), "out.json"),
        (w(&[&p("good.png"), "--save-counts", &under_file]), "out.json"),
        (w(&[&p("good.png"), "--scheme", "effective_number", "--beta", "1.5"]), "beta"),
        (w(&[&p("good.png"), "--scheme", "enet", "--c", "0.5"]), "option c"),
        (w(&[&p("good.png"), "--absent", "sometimes"]), "absent"),
        (w(&[&p("good.png"), "--colormap", &p("empty_dir")]), "colour map"),
        (w(&["--counts", &p("x.npy")]), "x.npy"),
        (l("x.npy", "t5.npy", &[]), "target shape [5]"),
        (l("xi.npy", "t.npy", &[]), "must be a float type"),
        (l("xhuge.npy", "t.npy", &[]), "1000000000000000 elements, over the limit"),
        (l("x.npy", "t.npy", &["--max-elements", "5"]), "over the limit"),
        (l("bad.safetensors", "t.npy", &[]), "not JSON"),
        (l("ok.safetensors:nope", "t.npy", &[]), "no tensor named"),
        (l("x.npy", "t.npy", &["--label-smoothing", "2"]), "label_smoothing"),
        (l("x.npy", "oob.npy", &[]), "target shape"),
        (l("x.npy", "t.npy", &["--grad-out", &under_file]), "out.json"),
        (l("x.npy", "t.npy", &["--weights-from", &p("good.png")]), "good.png"),
        // Flags are checked against the loss before any work: none is silently ignored.
        (l("x.npy", "t.npy", &["--pos-weight", "2"]), "--pos-weight does not apply to --loss cross-entropy"),
        (l("x.npy", "t.npy", &["--batch"]), "--batch does not apply"),
        (l("x.npy", "t.npy", &["--scheme", "enet"]), "--weights-from"),
        (l("x.npy", "t.npy", &["--reduction", "median"]), "possible values: mean, sum"),
        (w(&[&p("good.png"), "--scheme", "balanced", "--c", "1.5"]), "c is a constant of enet only"),
        (
            vec![
                "loss".into(),
                "--loss".into(),
                "focal".into(),
                "--input".into(),
                p("x.npy"),
                "--target".into(),
                p("t.npy"),
                "--gamma".into(),
                "-1".into(),
            ],
            "gamma",
        ),
        (vec!["bench".into(), "--workload".into(), "nope".into()], "unknown workload"),
        (vec!["bench".into(), "--threads".into(), "0".into()], "threads"),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = xent(&args);
        assert_fails(&out, needle);
        assert_eq!(listing(d), before, "{args:?} left a file behind");
    }
    // Usage errors are clap's: exit 2 too, and no panic.
    let out = xent(&["weights", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

/// A `.nii.gz` whose header says 10 x 10 x 10 bytes but whose stream inflates to 64 MiB more.
fn gzip_bomb() -> Vec<u8> {
    use std::io::Write;
    let mut h = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/masks/ct/vol_i16_big_endian.nii"))
        .unwrap()[..352]
        .to_vec();
    for (k, v) in [3i16, 10, 10, 10, 1].iter().enumerate() {
        h[40 + 2 * k..42 + 2 * k].copy_from_slice(&v.to_be_bytes());
    }
    h[70..72].copy_from_slice(&2i16.to_be_bytes()); // uint8
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&h).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        e.write_all(&zeros).unwrap();
    }
    e.finish().unwrap()
}
