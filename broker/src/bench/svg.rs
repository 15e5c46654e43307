//! The comparison chart (plotters, SVG backend only): for each case's first metric, one bar
//! per other server showing how far the baseline is ahead of it (> 1) or behind (< 1), with a
//! line at parity.

use super::report::{CompareRow, Comparison};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The rows charted: each case's first metric, and tail latency where there is one.
fn primary_rows(c: &Comparison) -> Vec<&CompareRow> {
    let mut seen: Vec<&str> = Vec::new();
    let mut rows = Vec::new();
    for r in &c.rows {
        if !seen.contains(&r.case.as_str()) {
            seen.push(&r.case);
            rows.push(r);
        } else if r.metric.starts_with("p99 ") {
            rows.push(r);
        }
    }
    rows
}

/// The SVG document for a comparison.
pub fn chart(c: &Comparison, title: &str) -> Result<String, String> {
    let rows = primary_rows(c);
    let others: Vec<&String> = c.labels.iter().filter(|l| **l != c.baseline).collect();
    // Advantage of the baseline over each other label, per row (> 1 = baseline ahead).
    let bars: Vec<Vec<Option<f64>>> = rows
        .iter()
        .map(|r| {
            let base = r.medians.get(&c.baseline).map(|m| m.0);
            others
                .iter()
                .map(|l| {
                    let o = r.medians.get(*l)?.0;
                    super::report::advantage(base?, o, r.higher_is_better)
                })
                .collect()
        })
        .collect();
    let ymax = bars
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(1.0f64, f64::max)
        * 1.2;
    let n = rows.len().max(1);
    let width = (160 + 110 * n).max(640) as u32;
    let height = 460u32;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(56)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..n as f64, 0f64..ymax)
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(0)
            .y_desc(format!("{} advantage (×, > 1 = ahead)", c.baseline))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .draw()
            .map_err(e)?;
        let k = others.len().max(1) as f64;
        let w = 0.8 / k;
        for (j, label) in others.iter().enumerate() {
            let color = PALETTE[j % PALETTE.len()];
            let rects: Vec<Rectangle<(f64, f64)>> = bars
                .iter()
                .enumerate()
                .filter_map(|(i, b)| {
                    let v = b[j]?;
                    let x0 = i as f64 + 0.1 + j as f64 * w;
                    Some(Rectangle::new(
                        [(x0, 0.0), (x0 + w * 0.92, v)],
                        color.filled(),
                    ))
                })
                .collect();
            chart
                .draw_series(rects)
                .map_err(e)?
                .label(format!("vs {label}"))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
            let texts: Vec<Text<(f64, f64), String>> = bars
                .iter()
                .enumerate()
                .filter_map(|(i, b)| {
                    let v = b[j]?;
                    let x = i as f64 + 0.1 + (j as f64 + 0.46) * w;
                    let style = TextStyle::from(("sans-serif", 11).into_font())
                        .pos(Pos::new(HPos::Center, VPos::Bottom));
                    Some(Text::new(format!("{v:.2}"), (x, v), style))
                })
                .collect();
            chart.draw_series(texts).map_err(e)?;
        }
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, 1.0), (n as f64, 1.0)],
                BLACK.stroke_width(1),
            )))
            .map_err(e)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
        // Case names under each group, with the metric compared.
        for (i, r) in rows.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            let style = TextStyle::from(("sans-serif", 12).into_font())
                .pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(r.case.clone(), (px, py + 8), style.clone()))
                .map_err(e)?;
            let small = TextStyle::from(("sans-serif", 10).into_font())
                .pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(r.metric.clone(), (px, py + 24), small))
                .map_err(e)?;
        }
        root.present().map_err(e)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::{Metric, Report, compare};

    #[test]
    fn draws_one_bar_per_other_server_and_case() {
        let rep = |name: &str, label: &str, v: f64| Report {
            name: name.into(),
            label: label.into(),
            metrics: vec![Metric::higher("msgs/s", v)],
            ..Report::default()
        };
        let c = compare(
            &[
                rep("pub", "nats-mini", 200.0),
                rep("pub", "nats-server 2.15", 100.0),
                rep("pub", "nats-server 2.9", 160.0),
                rep("pubsub", "nats-mini", 50.0),
                rep("pubsub", "nats-server 2.15", 100.0),
            ],
            "nats-mini",
        );
        let svg = chart(&c, "test chart").unwrap();
        if let Ok(p) = std::env::var("BENCH_SVG_DUMP") {
            std::fs::write(p, &svg).unwrap();
        }
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        assert!(svg.contains("test chart"));
        assert!(svg.contains("vs nats-server 2.15") && svg.contains("vs nats-server 2.9"));
        // 2.00 and 1.25 for pub, 0.50 for pubsub; pubsub has no 2.9 bar.
        for v in ["2.00", "1.25", "0.50"] {
            assert!(svg.contains(&format!(">\n{v}\n<")), "missing {v}");
        }
        assert!(svg.contains(">\npubsub\n<") && svg.contains(">\nmsgs/s\n<"));
    }
}
