//! One SVG bar chart per group (plotters' SVG backend): a horizontal bar
//! per row at the group's headline value (median), spanheap's bar in a
//! colour of its own, and for wall times a whisker from the fastest to the
//! slowest run. Rows without a value (unsupported, failed) are left out.

use crate::Measured;
use crate::plan::{Group, Headline, Layout};
use crate::report::{headline, wall_span};
use plotters::prelude::*;
use std::path::Path;

/// Draws `g`'s chart into `file`; `Ok(false)` when no row has a value.
pub fn draw(g: &Group, ms: &[Measured], file: &Path) -> Result<bool, Box<dyn std::error::Error>> {
    struct Bar {
        label: String,
        value: f64,
        range: Option<(f64, f64)>,
        ours: bool,
    }
    let bars: Vec<Bar> = ms
        .iter()
        .filter(|m| g.layout == Layout::Peers || m.case.peer == "spanheap")
        .filter_map(|m| {
            let value = headline(g, m)?;
            let range = match g.headline {
                Headline::Wall => wall_span(m).filter(|_| m.ok_runs().len() > 1),
                Headline::Column(_) => None,
            };
            Some(Bar {
                label: m.case.row.clone(),
                value,
                range,
                ours: m.case.peer == "spanheap" && g.layout == Layout::Peers,
            })
        })
        .collect();
    if bars.is_empty() {
        return Ok(false);
    }
    let unit = match g.headline {
        Headline::Wall => "median wall time (s)".to_owned(),
        Headline::Column(i) => g
            .columns
            .get(i)
            .map_or(String::new(), |c| format!("median {}", c.title)),
    };
    let max = bars
        .iter()
        .map(|b| b.range.map_or(b.value, |r| r.1).max(b.value))
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE)
        * 1.15;
    let height = 80 + 28 * bars.len() as u32;
    let root = SVGBackend::new(file, (820, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = bars.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(&g.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(170)
        .build_cartesian_2d(0.0..max, (0..n).into_segmented())?;
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(unit)
        .y_labels(n)
        .y_label_formatter(&|v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()?;
    let ours = RGBColor(0xd9, 0x5f, 0x02);
    let theirs = RGBColor(0x75, 0x70, 0xb3);
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let colour = if b.ours { ours } else { theirs };
        let mut r = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (b.value, SegmentValue::Exact(i + 1)),
            ],
            colour.filled(),
        );
        r.set_margin(4, 4, 0, 0);
        r
    }))?;
    chart.draw_series(bars.iter().enumerate().filter_map(|(i, b)| {
        let (lo, hi) = b.range?;
        Some(PathElement::new(
            vec![
                (lo, SegmentValue::CenterOf(i)),
                (hi, SegmentValue::CenterOf(i)),
            ],
            BLACK.stroke_width(2),
        ))
    }))?;
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        Text::new(
            format!("{:.3}", b.value),
            (b.value, SegmentValue::CenterOf(i)),
            ("sans-serif", 12),
        )
    }))?;
    root.present()?;
    Ok(true)
}
