//! Charts for the HTML report as inline SVG (plotters' SVG backend): a histogram of the
//! per-image values with the threshold marked, and an audit's curve (similarity per
//! randomised layer, per transform magnitude...). Axes carry labels and units.
use plotters::prelude::*;

const W: u32 = 520;
const H: u32 = 300;

/// Glyph metrics for laying out text (the SVG itself names the generic `sans-serif` family;
/// the browser draws it). DejaVu Sans, vendored with its licence under assets/fonts/.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn fonts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn finite_range(v: &[f64], extra: f64) -> (f64, f64) {
    let mut lo = extra;
    let mut hi = extra;
    for x in v.iter().copied().filter(|x| x.is_finite()) {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if (hi - lo).abs() < 1e-12 {
        (lo - 0.5, hi + 0.5)
    } else {
        let pad = 0.05 * (hi - lo);
        (lo - pad, hi + pad)
    }
}

/// Histogram of `values` (per-image metric) with a red line at `threshold`.
pub fn histogram(values: &[f64], threshold: f64, metric: &str) -> String {
    fonts();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let (lo, hi) = finite_range(values, threshold);
        let bins = 20usize;
        let width = (hi - lo) / bins as f64;
        let mut counts = vec![0u32; bins];
        for v in values.iter().copied().filter(|v| v.is_finite()) {
            let b = (((v - lo) / width) as usize).min(bins - 1);
            counts[b] += 1;
        }
        let ymax = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
        let chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(45)
            .build_cartesian_2d(lo..hi, 0.0..ymax);
        let Ok(mut chart) = chart else {
            return svg_fallback();
        };
        let _ = chart
            .configure_mesh()
            .x_desc(format!("{metric} per image"))
            .y_desc("images")
            .disable_mesh()
            .draw();
        let _ = chart.draw_series(counts.iter().enumerate().map(|(i, c)| {
            let x0 = lo + i as f64 * width;
            Rectangle::new(
                [(x0, 0.0), (x0 + width, *c as f64)],
                RGBColor(70, 110, 180).filled(),
            )
        }));
        let _ = chart
            .draw_series(LineSeries::new(
                vec![(threshold, 0.0), (threshold, ymax)],
                RED.stroke_width(2),
            ))
            .map(|s| {
                s.label(format!("threshold {threshold}"))
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], RED))
            });
        let _ = chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw();
        let _ = root.present();
    }
    svg
}

/// Per-image paired differences (current - baseline), sorted, as dots: zero (grey) and the
/// regression boundary (red: worse by the allowed regression) marked. `worse_higher`: a
/// positive difference is a worsening.
pub fn paired_differences(
    diffs: &[f64],
    worse_higher: bool,
    allowance: f64,
    metric: &str,
) -> String {
    fonts();
    let mut d: Vec<f64> = diffs.iter().copied().filter(|v| v.is_finite()).collect();
    d.sort_by(f64::total_cmp);
    let edge = if worse_higher { allowance } else { -allowance };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let (lo, hi) = finite_range(&d, edge);
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        let n = d.len().max(1) as f64;
        let chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..n + 1.0, lo..hi);
        let Ok(mut chart) = chart else {
            return svg_fallback();
        };
        let _ = chart
            .configure_mesh()
            .x_desc("images, sorted by difference")
            .y_desc(format!("{metric}: current - baseline"))
            .disable_mesh()
            .draw();
        let _ = chart.draw_series(LineSeries::new(
            vec![(0.0, 0.0), (n + 1.0, 0.0)],
            RGBColor(150, 150, 150).stroke_width(1),
        ));
        let _ = chart
            .draw_series(LineSeries::new(
                vec![(0.0, edge), (n + 1.0, edge)],
                RED.stroke_width(2),
            ))
            .map(|s| {
                s.label(format!(
                    "worse by {allowance} ({} is worse)",
                    if worse_higher { "higher" } else { "lower" }
                ))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], RED))
            });
        let _ =
            chart.draw_series(d.iter().enumerate().map(|(i, v)| {
                Circle::new((i as f64 + 1.0, *v), 3, RGBColor(70, 110, 180).filled())
            }));
        let _ = chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw();
        let _ = root.present();
    }
    svg
}

/// Line chart of a curve's mean (and median, dashed) against its categorical x values.
/// What a curve chart draws besides the mean and median lines.
#[derive(Default, Clone, Copy)]
pub struct Extra<'a> {
    /// A baseline's values at each x and its name (e.g. the random order's mean).
    pub reference: Option<(&'a [Option<f64>], &'a str)>,
    /// The interquartile band: 25th and 75th percentiles at each x.
    pub band: Option<Band<'a>>,
}

/// Lower and upper edges of a band at each x.
pub type Band<'a> = (&'a [Option<f64>], &'a [Option<f64>]);

pub fn curve(
    x: &[String],
    mean: &[Option<f64>],
    median: &[Option<f64>],
    x_label: &str,
    y_label: &str,
    threshold: Option<f64>,
    extra: Extra,
) -> String {
    let Extra { reference, band } = extra;
    let mean: Vec<f64> = mean.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
    let refs: Vec<f64> = reference
        .map(|(r, _)| r.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
        .unwrap_or_default();
    let median: Vec<f64> = median.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
    let (mean, median) = (mean.as_slice(), median.as_slice());
    fonts();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let all: Vec<f64> = mean.iter().chain(median).chain(&refs).copied().collect();
        let (lo, hi) = finite_range(
            &all,
            threshold
                .unwrap_or(f64::NAN)
                .min(all.iter().copied().fold(f64::INFINITY, f64::min)),
        );
        let n = x.len().max(1);
        let chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(55)
            .y_label_area_size(45)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), lo..hi);
        let Ok(mut chart) = chart else {
            return svg_fallback();
        };
        // A deep model has a hundred layers: label at most MAX_TICKS of them (always the first
        // and the last), shortened, so the axis stays readable; every layer is listed in the
        // audit's details.
        let labels: Vec<String> = x.iter().map(|l| short(l)).collect();
        let every = n.div_ceil(MAX_TICKS).max(1);
        let _ = chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_labels(n)
            .x_label_formatter(&|v| {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 {
                    let i = i as usize;
                    if i % every == 0 || i + 1 == n {
                        return labels.get(i).cloned().unwrap_or_default();
                    }
                }
                String::new()
            })
            .draw();
        let pts = |v: &[f64]| -> Vec<(f64, f64)> {
            v.iter()
                .enumerate()
                .filter(|(_, y)| y.is_finite())
                .map(|(i, y)| (i as f64, *y))
                .collect()
        };
        let blue = RGBColor(40, 90, 170);
        if let Some((lo, hi)) = band {
            // The interquartile band: the lower edge left to right, the upper edge back.
            let pts: Vec<(f64, f64)> =
                lo.iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (i as f64, v)))
                    .chain(
                        hi.iter().enumerate().rev().filter_map(|(i, v)| {
                            v.filter(|v| v.is_finite()).map(|v| (i as f64, v))
                        }),
                    )
                    .collect();
            if pts.len() >= 3 {
                let _ = chart
                    .draw_series(std::iter::once(Polygon::new(pts, blue.mix(0.15).filled())))
                    .map(|s| {
                        s.label("25-75% of images").legend(move |(x, y)| {
                            Rectangle::new([(x, y - 4), (x + 15, y + 4)], blue.mix(0.15).filled())
                        })
                    });
            }
        }
        let _ = chart
            .draw_series(LineSeries::new(pts(mean), blue.stroke_width(2)))
            .map(|s| {
                s.label("mean")
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], blue))
            });
        let _ = chart.draw_series(
            pts(mean)
                .into_iter()
                .map(|p| Circle::new(p, 3, blue.filled())),
        );
        let grey = RGBColor(120, 120, 120);
        let _ = chart
            .draw_series(LineSeries::new(pts(median), grey))
            .map(|s| {
                s.label("median")
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], grey))
            });
        if let Some((_, label)) = reference {
            let orange = RGBColor(220, 120, 20);
            let _ = chart
                .draw_series(LineSeries::new(pts(&refs), orange.stroke_width(2)))
                .map(|s| {
                    s.label(format!("{label} (mean)"))
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], orange))
                });
        }
        if let Some(t) = threshold.filter(|t| t.is_finite()) {
            let _ = chart
                .draw_series(LineSeries::new(vec![(-0.5, t), (n as f64 - 0.5, t)], RED))
                .map(|s| {
                    s.label(format!("threshold {t}"))
                        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], RED))
                });
        }
        let _ = chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw();
        let _ = root.present();
    }
    svg
}

/// Most x labels a curve shows.
const MAX_TICKS: usize = 12;

/// A label of at most 14 characters (the end kept: layer names differ at their end).
fn short(l: &str) -> String {
    let c: Vec<char> = l.chars().collect();
    if c.len() <= 14 {
        l.to_string()
    } else {
        format!("…{}", c[c.len() - 13..].iter().collect::<String>())
    }
}

fn svg_fallback() -> String {
    format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"40\"><text x=\"5\" y=\"20\">no chart: no finite values</text></svg>")
}

#[cfg(test)]
mod tests {
    #[test]
    fn charts_are_svg_with_axis_labels() {
        let h = super::histogram(&[0.1, 0.2, 0.25, 0.9], 0.5, "spearman");
        assert!(
            h.starts_with("<svg")
                && h.contains("spearman per image")
                && h.contains("threshold 0.5")
        );
        let c = super::curve(
            &["original".into(), "fc".into()],
            &[Some(1.0), Some(0.2)],
            &[Some(1.0), None],
            "layer",
            "Spearman",
            Some(0.5),
            super::Extra::default(),
        );
        assert!(c.contains("<svg") && c.contains("layer") && c.contains("Spearman"));
        let c = super::curve(
            &["0.00".into(), "0.50".into(), "1.00".into()],
            &[Some(0.9), Some(0.2), Some(0.1)],
            &[Some(0.9), Some(0.1), Some(0.1)],
            "fraction of pixels removed",
            "probability",
            None,
            super::Extra {
                reference: Some((&[Some(0.9), Some(0.6), Some(0.1)], "random order")),
                band: Some((
                    &[Some(0.8), Some(0.1), Some(0.0)],
                    &[Some(1.0), Some(0.3), Some(0.2)],
                )),
            },
        );
        assert!(c.contains("random order (mean)") && c.contains("25-75% of images"));
    }

    #[test]
    fn a_hundred_layers_keep_a_readable_axis() {
        let x: Vec<String> = (0..101)
            .map(|i| format!("backbone.stage{}.block{}.conv", i / 10, i % 10))
            .collect();
        let y: Vec<Option<f64>> = (0..101).map(|i| Some(1.0 - i as f64 / 100.0)).collect();
        let c = super::curve(
            &x,
            &y,
            &y,
            "layer",
            "Spearman",
            None,
            super::Extra::default(),
        );
        let shown = x.iter().filter(|l| c.contains(&super::short(l))).count();
        assert!(
            (2..=super::MAX_TICKS + 1).contains(&shown),
            "{shown} labels"
        );
        assert!(c.contains(&super::short(&x[100])), "last layer labelled");
    }
}
