//! PNG plots for reports: predicted vs true scatter and overlaid distributions. Files are written
//! atomically (rendered to a temporary path, then renamed).

use std::path::Path;

use cellshift_data::atomic::write_atomically;
use cellshift_data::DataError;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const SIZE: (u32, u32) = (640, 520);

fn plot_error(e: impl std::fmt::Display) -> DataError {
    DataError::Invalid(format!(
        "plotting failed: {e}; check that a font is installed (fonts-dejavu-core)"
    ))
}

/// Scatter of (true, predicted) pairs with the identity line, e.g. per-gene mean shifts.
pub fn scatter_png(
    path: &Path,
    points: &[(f64, f64)],
    title: &str,
    x_label: &str,
    y_label: &str,
) -> Result<(), DataError> {
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(x, y)| {
            (lo.min(x).min(y), hi.max(x).max(y))
        });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (-1.0, 1.0)
    };
    let pad = 0.05 * (hi - lo);
    let range = (lo - pad)..(hi + pad);
    write_atomically(path, |tmp| {
        let root = BitMapBackend::new(tmp, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(range.clone(), range.clone())
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(LineSeries::new(
                vec![(range.start, range.start), (range.end, range.end)],
                &BLACK.mix(0.4),
            ))
            .map_err(plot_error)?;
        chart
            .draw_series(
                finite
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 3, BLUE.mix(0.6).filled())),
            )
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
        Ok(())
    })
}

/// Overlaid histograms of several samples (e.g. control, true and predicted values of one gene).
pub fn histograms_png(
    path: &Path,
    series: &[(&str, &[f64])],
    title: &str,
    x_label: &str,
) -> Result<(), DataError> {
    let all = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (lo.min(0.0), lo.max(0.0) + 1.0)
    };
    let bins = 30usize;
    let width = (hi - lo) / bins as f64;
    let densities: Vec<Vec<f64>> = series
        .iter()
        .map(|(_, values)| {
            let mut counts = vec![0.0; bins];
            let n = values.iter().filter(|v| v.is_finite()).count().max(1) as f64;
            for &v in values.iter().filter(|v| v.is_finite()) {
                let b = (((v - lo) / width) as usize).min(bins - 1);
                counts[b] += 1.0 / (n * width);
            }
            counts
        })
        .collect();
    let top = densities
        .iter()
        .flatten()
        .copied()
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.1;
    let colours = [
        RGBColor(120, 120, 120),
        RGBColor(220, 50, 32),
        RGBColor(0, 90, 181),
        RGBColor(0, 150, 60),
    ];
    write_atomically(path, |tmp| {
        let root = BitMapBackend::new(tmp, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("density")
            .draw()
            .map_err(plot_error)?;
        for (i, ((label, _), density)) in series.iter().zip(&densities).enumerate() {
            let colour = colours[i % colours.len()];
            let steps: Vec<(f64, f64)> = density
                .iter()
                .enumerate()
                .flat_map(|(b, &d)| [(lo + b as f64 * width, d), (lo + (b + 1) as f64 * width, d)])
                .collect();
            chart
                .draw_series(LineSeries::new(steps, colour.stroke_width(2)))
                .map_err(plot_error)?
                .label(*label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_png_files() {
        let dir = tempfile::tempdir().unwrap();
        let scatter = dir.path().join("s.png");
        scatter_png(
            &scatter,
            &[(0.0, 0.1), (1.0, 0.9), (-0.5, -0.4)],
            "shifts",
            "true",
            "predicted",
        )
        .unwrap();
        let hist = dir.path().join("h.png");
        histograms_png(
            &hist,
            &[("a", &[0.0, 0.5, 1.0]), ("b", &[0.2, 0.3])],
            "gene",
            "value",
        )
        .unwrap();
        for path in [scatter, hist] {
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(&bytes[1..4], b"PNG", "{} is not a PNG", path.display());
        }
    }

    #[test]
    fn heat_maps_of_any_size_are_written() {
        let dir = tempfile::tempdir().unwrap();
        for (rows, cols) in [(1, 1), (2, 3)] {
            let values = ndarray::Array2::from_shape_fn((rows, cols), |(r, c)| {
                if r + c == 1 {
                    f64::NAN
                } else {
                    (r * cols + c) as f64
                }
            });
            let path = dir.path().join(format!("heat_{rows}x{cols}.png"));
            let labels = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
            heatmap_png(
                &path,
                &values,
                &labels(rows),
                &labels(cols),
                ("x", "y"),
                "t",
                false,
            )
            .unwrap();
            assert!(std::fs::metadata(&path).unwrap().len() > 0);
        }
        let bad = heatmap_png(
            &dir.path().join("bad.png"),
            &ndarray::Array2::zeros((2, 2)),
            &["a".into()],
            &["b".into(), "c".into()],
            ("x", "y"),
            "t",
            false,
        );
        assert!(bad.is_err(), "one label per row is required");
    }
}

/// One line of a [`curves_png`] panel: a name and (x, mean, std) points.
pub type Curve<'a> = (&'a str, Vec<(f64, f64, f64)>);

/// Side-by-side panels (one per metric) of mean ± std against x (e.g. the number of context experiments
/// K), several named lines per panel (e.g. a model and reference baselines).
pub fn curves_png(
    path: &Path,
    panels: &[(&str, Vec<Curve<'_>>)],
    x_label: &str,
    title: &str,
) -> Result<(), DataError> {
    if panels.is_empty() {
        return Err(DataError::Invalid(
            "nothing to plot: no metric panels".into(),
        ));
    }
    let width = 330 * panels.len() as u32;
    let palette = [BLUE, RED, BLACK, GREEN, MAGENTA, CYAN];
    write_atomically(path, |tmp| {
        let root = BitMapBackend::new(tmp, (width, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(plot_error)?;
        let areas = root.split_evenly((1, panels.len()));
        for (area, (metric, curves)) in areas.iter().zip(panels) {
            let points = curves.iter().flat_map(|(_, p)| p.iter());
            let (mut x0, mut x1, mut y0, mut y1) = (
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
            );
            for &(x, m, s) in points.filter(|(x, m, _)| x.is_finite() && m.is_finite()) {
                let s = if s.is_finite() { s } else { 0.0 };
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(m - s);
                y1 = y1.max(m + s);
            }
            if !(x0.is_finite() && y0.is_finite()) {
                continue;
            }
            let (xp, yp) = (((x1 - x0) * 0.05).max(0.5), ((y1 - y0) * 0.08).max(1e-6));
            let mut chart = ChartBuilder::on(area)
                .caption(*metric, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(55)
                .build_cartesian_2d((x0 - xp)..(x1 + xp), (y0 - yp)..(y1 + yp))
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .draw()
                .map_err(plot_error)?;
            for (i, (name, pts)) in curves.iter().enumerate() {
                let color = palette[i % palette.len()];
                let line: Vec<(f64, f64)> = pts.iter().map(|&(x, m, _)| (x, m)).collect();
                chart
                    .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
                    .map_err(plot_error)?
                    .label(*name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(pts.iter().map(|&(x, m, s)| {
                        PathElement::new(vec![(x, m - s), (x, m + s)], color.stroke_width(1))
                    }))
                    .map_err(plot_error)?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK.mix(0.3))
                .label_font(("sans-serif", 12))
                .draw()
                .map_err(plot_error)?;
        }
        root.present().map_err(plot_error)?;
        Ok(())
    })
}

/// A heat map of `values` (rows × columns, NaN drawn grey) with each cell's value written in it, e.g. a
/// metric over (training contexts × adaptation share). Colours run from white (lowest) to blue (highest)
/// unless `low_is_good`, which reverses them so that the better end is always blue.
pub fn heatmap_png(
    path: &Path,
    values: &ndarray::Array2<f64>,
    row_labels: &[String],
    column_labels: &[String],
    axis_labels: (&str, &str),
    title: &str,
    low_is_good: bool,
) -> Result<(), DataError> {
    let (rows, cols) = values.dim();
    if rows == 0 || cols == 0 || row_labels.len() != rows || column_labels.len() != cols {
        return Err(DataError::Invalid(format!(
            "a heat map needs a non-empty matrix and one label per row and column (got {rows} × {cols}, \
             {} row and {} column labels)",
            row_labels.len(),
            column_labels.len()
        )));
    }
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let colour = |v: f64| {
        if !v.is_finite() {
            return RGBColor(200, 200, 200);
        }
        let mut t = (v - lo) / span;
        if low_is_good {
            t = 1.0 - t;
        }
        let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
        RGBColor(mix(255.0, 33.0), mix(255.0, 102.0), mix(255.0, 172.0))
    };
    let size = ((110 + 90 * cols) as u32, (110 + 60 * rows) as u32);
    write_atomically(path, |tmp| {
        let root = BitMapBackend::new(tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(
                // Integer ranges include their end: 0..n−1 gives n segments.
                (0..cols - 1).into_segmented(),
                (0..rows - 1).into_segmented(),
            )
            .map_err(plot_error)?;
        let (cl, rl) = (column_labels.to_vec(), row_labels.to_vec());
        let label = |labels: &[String], v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(axis_labels.0)
            .y_desc(axis_labels.1)
            .x_labels(cols)
            .y_labels(rows)
            .x_label_formatter(&move |v| label(&cl, v))
            .y_label_formatter(&move |v| label(&rl, v))
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(values.indexed_iter().map(|((r, c), &v)| {
                Rectangle::new(
                    [
                        (SegmentValue::Exact(c), SegmentValue::Exact(r)),
                        (SegmentValue::Exact(c + 1), SegmentValue::Exact(r + 1)),
                    ],
                    colour(v).filled(),
                )
            }))
            .map_err(plot_error)?;
        let centred = ("sans-serif", 14)
            .into_font()
            .into_text_style(&root)
            .pos(Pos::new(HPos::Center, VPos::Center));
        chart
            .draw_series(values.indexed_iter().map(|((r, c), &v)| {
                let text = if v.is_finite() {
                    format!("{v:.3}")
                } else {
                    "n/a".into()
                };
                Text::new(
                    text,
                    (SegmentValue::CenterOf(c), SegmentValue::CenterOf(r)),
                    centred.clone(),
                )
            }))
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
        Ok(())
    })
}

/// One cell of a [`table_heatmap_png`]: the text shown and its shade (0 = worst, red; 1 = best, green;
/// `None` = grey, e.g. n/a).
#[derive(Clone, Debug, PartialEq)]
pub struct HeatmapCell {
    /// The text in the cell.
    pub text: String,
    /// Shade in [0, 1], or `None` for grey.
    pub shade: Option<f64>,
}

/// A table drawn as a heat-map: one row per `rows` entry, one column per `columns` entry, each cell
/// coloured by its shade and labelled with its text.
pub fn table_heatmap_png(
    path: &Path,
    title: &str,
    rows: &[String],
    columns: &[String],
    cells: &[Vec<HeatmapCell>],
) -> Result<(), DataError> {
    if rows.is_empty() || columns.is_empty() || cells.len() != rows.len() {
        return Err(DataError::Invalid(format!(
            "a heat-map needs rows and columns and one row of cells per row ({} rows, {} columns, {} cell rows)",
            rows.len(),
            columns.len(),
            cells.len()
        )));
    }
    let (label_w, cell_w, cell_h, top) = (230i32, 110i32, 30i32, 80i32);
    let width = (label_w + cell_w * columns.len() as i32 + 20) as u32;
    let height = (top + cell_h * rows.len() as i32 + 20) as u32;
    let colour = |shade: Option<f64>| match shade {
        None => RGBColor(215, 215, 215),
        Some(s) => {
            let s = s.clamp(0.0, 1.0);
            // red (worst) → yellow → green (best), light enough for black text
            let (r, g) = if s < 0.5 {
                (250.0, 150.0 + 200.0 * s)
            } else {
                (250.0 - 260.0 * (s - 0.5), 250.0)
            };
            RGBColor(r as u8, g as u8, 150)
        }
    };
    write_atomically(path, |tmp| {
        let root = BitMapBackend::new(tmp, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        root.draw(&Text::new(
            title.to_string(),
            (10, 10),
            ("sans-serif", 16).into_font(),
        ))
        .map_err(plot_error)?;
        for (j, name) in columns.iter().enumerate() {
            let x = label_w + cell_w * j as i32;
            root.draw(&Text::new(
                name.clone(),
                (x + 6, top - 22),
                ("sans-serif", 14).into_font(),
            ))
            .map_err(plot_error)?;
        }
        for (i, (name, row)) in rows.iter().zip(cells).enumerate() {
            let y = top + cell_h * i as i32;
            root.draw(&Text::new(
                name.clone(),
                (8, y + 8),
                ("sans-serif", 14).into_font(),
            ))
            .map_err(plot_error)?;
            for (j, cell) in row.iter().enumerate().take(columns.len()) {
                let x = label_w + cell_w * j as i32;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell_w - 2, y + cell_h - 2)],
                    colour(cell.shade).filled(),
                ))
                .map_err(plot_error)?;
                root.draw(&Text::new(
                    cell.text.clone(),
                    (x + 8, y + 8),
                    ("sans-serif", 13).into_font(),
                ))
                .map_err(plot_error)?;
            }
        }
        root.present().map_err(plot_error)?;
        Ok(())
    })
}
