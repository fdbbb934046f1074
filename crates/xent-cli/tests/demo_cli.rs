//! End-to-end tests of `xent demo` and `xent train`, at a tiny size.

mod common;

use common::*;
use png::{BitDepth, ColorType};

fn check_outputs(dir: &std::path::Path, losses: usize) {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    let l = v["losses"].as_array().unwrap();
    assert_eq!(l.len(), losses);
    for e in l {
        for k in ["name", "foreground_iou", "precision", "recall", "f1", "background_accuracy"] {
            assert!(!e[k].is_null(), "{k} in {e}");
        }
    }
    for p in ["curves.png", "samples.png"] {
        let b = std::fs::read(dir.join(p)).unwrap();
        assert_eq!(&b[1..4], b"PNG", "{p}");
    }
    // report.html: HTML5 without a parse error, the table with one row per loss (its name and
    // F1 as in summary.json), the curves as inline SVG, the samples as an embedded PNG.
    let page = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let doc = scraper::Html::parse_document(&page);
    assert!(doc.errors.is_empty(), "report.html: {:?}", doc.errors);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    let rows: Vec<Vec<String>> = doc
        .select(&sel("table tbody tr"))
        .map(|r| r.select(&sel("td")).map(|c| c.text().collect::<String>()).collect())
        .collect();
    assert_eq!(rows.len(), losses);
    for (row, e) in rows.iter().zip(l) {
        assert_eq!(row[0], e["name"].as_str().unwrap());
        assert_eq!(row[4], format!("{:.3}", e["f1"].as_f64().unwrap()));
    }
    assert_eq!(doc.select(&sel("svg")).count(), 1);
    let img = doc.select(&sel("img")).next().unwrap();
    assert!(img.value().attr("src").unwrap().starts_with("data:image/png;base64,"));
}

#[test]
fn demo_writes_the_table_summary_and_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let out = xent(&["demo", "--epochs", "1", "--size", "16", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Off a terminal, one progress line per loss and epoch on standard error.
    let progress = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        progress.lines().filter(|l| l.contains("epoch 1/1") && l.contains("held-out F1")).count(),
        6,
        "{progress}"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("report.html"), "{text}");
    for name in ["ce", "ce_batch_inverse_freq", "ce_dataset_weights", "bce_pos_weight", "focal", "dice_ce"] {
        assert!(text.lines().any(|l| l.starts_with(&format!("{name} "))), "{name} in {text}");
    }
    check_outputs(dir.path(), 6);
}

#[test]
fn train_runs_on_a_folder_of_images_and_masks() {
    let dir = tempfile::tempdir().unwrap();
    let (imgs, masks, out) = (dir.path().join("images"), dir.path().join("masks"), dir.path().join("out"));
    std::fs::create_dir_all(&imgs).unwrap();
    std::fs::create_dir_all(&masks).unwrap();
    for i in 0..6u64 {
        let m: Vec<u8> = labels(i, 16 * 16, 2).into_iter().map(|v| u8::from(v == 1)).collect();
        let img: Vec<u8> = m.iter().map(|&v| 40 + 150 * v).collect();
        png(&imgs.join(format!("s{i}.png")), 16, 16, ColorType::Grayscale, BitDepth::Eight, &img, None);
        png(&masks.join(format!("s{i}.png")), 16, 16, ColorType::Grayscale, BitDepth::Eight, &m, None);
    }
    let run = |loss: &str| {
        xent(&[
            "train",
            "--images",
            imgs.to_str().unwrap(),
            "--masks",
            masks.to_str().unwrap(),
            "--loss",
            loss,
            "--epochs",
            "1",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let ok = run("ce,dice_ce");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    check_outputs(&out, 2);
    assert_fails(&run("magic"), "unknown loss");
    std::fs::remove_file(masks.join("s3.png")).unwrap();
    assert_fails(&run("ce"), "s3.png");
}
