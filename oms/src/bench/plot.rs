//! `bench.png`: confirmed orders per second and the 99th percentile of
//! place→confirmed over the run, one point per second.

use std::path::Path;

use plotters::prelude::*;

use super::report::{Report, Second};

/// One figure of a second of the run.
type PerSecond = fn(&Second) -> u64;

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Draws the report's timeline into `path` (PNG, 1000×700).
///
/// # Errors
/// When the image cannot be drawn or written.
pub fn draw(report: &Report, path: &Path) -> anyhow::Result<()> {
    // Registering twice (a second report in one process) is harmless.
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow::anyhow!("the bundled font is not a font"))?;
    let root = BitMapBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let (upper, lower) = root.split_vertically(350);
    let seconds = report.timeline.len().max(1) as u32;
    let rate_max = report
        .timeline
        .iter()
        .map(|s| s.confirmed.max(s.accepted))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.15;
    let mut rate = ChartBuilder::on(&upper)
        .caption(
            format!(
                "oms bench on {}: {} orders/s offered",
                report.backend, report.offered_rate
            ),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(60)
        .build_cartesian_2d(0u32..seconds, 0f64..rate_max)
        .map_err(plot_error)?;
    rate.configure_mesh()
        .x_desc("seconds")
        .y_desc("orders per second")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(plot_error)?;
    let series: [(&str, RGBColor, PerSecond); 2] = [
        ("accepted (by due second)", BLUE, |s| s.accepted),
        ("confirmed (seen on the topic)", GREEN, |s| s.confirmed),
    ];
    for (label, colour, value) in series {
        rate.draw_series(LineSeries::new(
            report
                .timeline
                .iter()
                .map(|s| (s.at as u32, value(s) as f64)),
            colour.stroke_width(2),
        ))
        .map_err(plot_error)?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour));
    }
    rate.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(plot_error)?;

    let latency_max = report
        .timeline
        .iter()
        .map(|s| s.confirm_p99_ms)
        .fold(1.0, f64::max)
        * 1.15;
    let mut latency = ChartBuilder::on(&lower)
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(60)
        .build_cartesian_2d(0u32..seconds, 0f64..latency_max)
        .map_err(plot_error)?;
    latency
        .configure_mesh()
        .x_desc("seconds (due time of the order)")
        .y_desc("place → confirmed p99, ms")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(plot_error)?;
    latency
        .draw_series(LineSeries::new(
            report
                .timeline
                .iter()
                .map(|s| (s.at as u32, s.confirm_p99_ms)),
            RED.stroke_width(2),
        ))
        .map_err(plot_error)?;
    root.present().map_err(plot_error)?;
    Ok(())
}

fn plot_error<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the plot: {error:?}")
}
