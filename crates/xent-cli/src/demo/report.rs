//! `report.html`: one self-contained page (no network) with the table, the curves (inline SVG)
//! and the samples (a base64 PNG).

use super::training::Trained;
use base64::Engine as _;

/// The page; `about` is the line that says what was trained on.
pub(super) fn html(about: &str, runs: &[Trained], curves_svg: &str, samples_png: &[u8]) -> String {
    let rows: String = runs
        .iter()
        .map(|r| {
            let s = r.scores;
            let [cr, cg, cb] = r.colour;
            format!(
                "<tr><td><span class=\"key\" style=\"background:rgb({cr},{cg},{cb})\"></span>{}</td>\
                 <td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.4}</td></tr>\n",
                escape(r.name),
                s.iou,
                s.precision,
                s.recall,
                s.f1,
                s.background
            )
        })
        .collect();
    let samples = base64::engine::general_purpose::STANDARD.encode(samples_png);
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>xent demo: one segmentation network per loss</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 60em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ padding: 0.3em 0.8em; border-bottom: 1px solid #ddd; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img, svg {{ max-width: 100%; height: auto; }}
.key {{ display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.5em; vertical-align: middle; }}
</style>
</head>
<body>
<h1>xent demo: one segmentation network per loss</h1>
<p>{about}</p>
<h2>Held-out scores</h2>
<table>
<thead><tr><th>loss</th><th>foreground IoU</th><th>precision</th><th>recall</th><th>F1</th><th>background accuracy</th></tr></thead>
<tbody>
{rows}</tbody>
</table>
<h2>Held-out F1 per epoch</h2>
{curves_svg}
<h2>Samples</h2>
<p>Held-out images, their ground truth, and each loss's prediction (white: foreground).</p>
<img alt="held-out samples and each loss's prediction" src="data:image/png;base64,{samples}">
</body>
</html>
"#,
        about = escape(about),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
