//! A small grouped bar chart as inline SVG, drawn on the server: one group
//! per pass (oldest on the left), one bar per series, a legend and the
//! scale's top value. No script, so nothing to build or to trust.

use maud::{Markup, html};

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 160.0;
/// Room for the scale's labels on the left and the pass ids below.
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 18.0;

pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub values: Vec<i64>,
}

/// `labels`: one per group (the pass id); every series has as many values.
pub fn bars(title: &str, labels: &[String], series: &[Series]) -> Markup {
    let max = series.iter().flat_map(|s| s.values.iter().copied()).max().unwrap_or(0).max(1);
    let groups = labels.len().max(1) as f64;
    let group_w = (WIDTH - LEFT) / groups;
    // Thin bars even when there are few passes, so one pass does not fill the chart.
    let bar_w = (group_w * 0.8 / series.len().max(1) as f64).clamp(1.0, 14.0);
    let plot_h = HEIGHT - BOTTOM;
    // Label every pass when they fit, else every fifth.
    let every = if labels.len() <= 12 { 1 } else { 5 };
    html! {
        figure.chart {
            figcaption { (title) }
            svg role="img" aria-label=(title) width=(WIDTH) height=(HEIGHT) viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) {
                line x1=(LEFT) y1="0" x2=(LEFT) y2=(plot_h) stroke="#888" {}
                line x1=(LEFT) y1=(plot_h) x2=(WIDTH) y2=(plot_h) stroke="#888" {}
                text x=(LEFT - 4.0) y="10" text-anchor="end" font-size="10" { (max) }
                text x=(LEFT - 4.0) y=(plot_h) text-anchor="end" font-size="10" { "0" }
                @for (g, label) in labels.iter().enumerate() {
                    @let x0 = LEFT + g as f64 * group_w + group_w * 0.1;
                    @for (k, s) in series.iter().enumerate() {
                        @let v = s.values.get(g).copied().unwrap_or(0);
                        @let h = plot_h * v as f64 / max as f64;
                        rect x=(format!("{:.1}", x0 + k as f64 * bar_w)) y=(format!("{:.1}", plot_h - h))
                            width=(format!("{bar_w:.1}")) height=(format!("{h:.1}")) fill=(s.color) {
                            title { (s.name) " in pass " (label) ": " (v) }
                        }
                    }
                    @if g % every == 0 || g + 1 == labels.len() {
                        text x=(format!("{:.1}", x0 + group_w * 0.4)) y=(HEIGHT - 4.0) text-anchor="middle" font-size="10" { (label) }
                    }
                }
            }
            ul.legend {
                @for s in series {
                    li { span.swatch style=(format!("background:{}", s.color)) {} (s.name) }
                }
            }
        }
    }
}
