//! The demo's pictures, readable without the README: the held-out F1 curves (title, labelled
//! axes with ticks, a legend naming each loss) and the sample predictions (a header over each
//! column), drawn with plotters and the bundled font.

use super::data::Data;
use super::training::Trained;
use crate::draw::{fonts, plot_error, png_bytes};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

const CURVES: (u32, u32) = (640, 400);

fn colour(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// Held-out foreground F1 per epoch, one line per loss, on any plotters backend.
fn draw_curves<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, runs: &[Trained], epochs: usize) -> Result<()> {
    fonts();
    root.fill(&WHITE).map_err(plot_error)?;
    let x_max = epochs.max(2) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption("Held-out foreground F1 per epoch, one network per loss", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(1f64..x_max, 0f64..1f64)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("foreground F1")
        .x_labels(epochs.clamp(2, 12))
        .y_labels(6)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(plot_error)?;
    for r in runs {
        let c = colour(r.colour);
        let points: Vec<(f64, f64)> = r.curve.iter().enumerate().map(|(e, &f)| ((e + 1) as f64, f)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))
            .map_err(plot_error)?
            .label(r.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, c.filled()))).map_err(plot_error)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}

/// The curves as PNG bytes.
pub(super) fn curves_png(runs: &[Trained], epochs: usize) -> Result<Vec<u8>> {
    let (w, h) = CURVES;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    draw_curves(&BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area(), runs, epochs)?;
    png_bytes(&rgb, w as usize, h as usize)
}

/// The curves as an SVG document (for the HTML report).
pub(super) fn curves_svg(runs: &[Trained], epochs: usize) -> Result<String> {
    let mut svg = String::new();
    draw_curves(&SVGBackend::with_string(&mut svg, CURVES).into_drawing_area(), runs, epochs)?;
    Ok(svg)
}

/// Rows of held-out samples under a header: the image, the ground truth, then each loss's
/// prediction (white = foreground), as PNG bytes.
pub(super) fn samples_png(runs: &[Trained], test: &Data) -> Result<Vec<u8>> {
    fonts();
    let s = test.side;
    let (k, gap, header) = (2usize, 6usize, 24usize);
    let cell = s * k + gap;
    let rows = 4.min(test.n);
    let (w, h) = ((2 + runs.len()) * cell + gap, header + rows * cell + gap);
    let mut rgb = vec![0u8; w * h * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w as u32, h as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let titles =
            ["image".to_string(), "truth".to_string()].into_iter().chain(runs.iter().map(|r| r.name.to_string()));
        for (j, title) in titles.enumerate() {
            let x = (gap + j * cell) as i32;
            let style = ("sans-serif", 11).into_font().color(&BLACK);
            root.draw(&Text::new(title, (x, 6), style)).map_err(plot_error)?;
            if let Some(r) = j.checked_sub(2).map(|i| &runs[i]) {
                let bar = [(x, header as i32 - 5), (x + (s * k) as i32, header as i32 - 2)];
                root.draw(&Rectangle::new(bar, colour(r.colour).filled())).map_err(plot_error)?;
            }
        }
        let as_f32 = |m: &[u8]| m.iter().map(|&v| f32::from(v)).collect::<Vec<_>>();
        for i in 0..rows {
            let y = header + i * cell;
            let mut columns = vec![(test.image(i).to_vec(), (-0.5, 1.5)), (as_f32(test.mask(i)), (0.0, 1.0))];
            columns.extend(runs.iter().map(|r| (as_f32(&r.pred[i * s * s..(i + 1) * s * s]), (0.0, 1.0))));
            for (j, (img, (lo, hi))) in columns.iter().enumerate() {
                let x0 = gap + j * cell;
                for (p, &v) in img.iter().enumerate() {
                    let g = (((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0) as u8;
                    let (px, py) = ((x0 + (p % s) * k) as i32, (y + (p / s) * k) as i32);
                    let r = Rectangle::new([(px, py), (px + k as i32, py + k as i32)], RGBColor(g, g, g).filled());
                    root.draw(&r).map_err(plot_error)?;
                }
            }
        }
        root.present().map_err(plot_error)?;
    }
    png_bytes(&rgb, w, h)
}
