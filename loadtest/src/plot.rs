//! Line charts as standalone SVG: latency percentiles over time, throughput over time, and the
//! gateway's memory. Written by hand (a few dozen lines) rather than through a plotting crate, so
//! they need no system fonts and render the same everywhere (browsers, GitHub, CI artefacts).

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::report::RunResult;

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 160.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLOURS: [&str; 5] = ["#1f77b4", "#ff7f0e", "#d62728", "#2ca02c", "#9467bd"];

/// A named series of (x, y) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A rounded step so an axis has about five ticks.
fn nice_step(max: f64) -> f64 {
    let raw = (max / 5.0).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn label(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if value >= 1e4 {
        format!("{:.0}k", value / 1e3)
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// An SVG line chart of `series` against time.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let points = series.iter().flat_map(|s| s.points.iter());
    let (x_max, y_max) = points.fold((1.0f64, 0.0f64), |(x, y), p| (x.max(p.0), y.max(p.1)));
    let (x_step, y_step) = (nice_step(x_max), nice_step(y_max.max(1e-9)));
    let (x_top, y_top) = ((x_max / x_step).ceil() * x_step, ((y_max / y_step).ceil() * y_step).max(y_step));
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let px = |x: f64| LEFT + x / x_top * plot_w;
    let py = |y: f64| TOP + plot_h - y / y_top * plot_h;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(svg, r#"<text x="{LEFT}" y="24" font-size="15" font-weight="bold">{}</text>"#, escape(title));
    let mut y = 0.0;
    while y <= y_top + y_step / 2.0 {
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#ddd"/><text x="{2:.1}" y="{3:.1}" text-anchor="end">{4}</text>"##,
            py(y),
            LEFT + plot_w,
            LEFT - 6.0,
            py(y) + 4.0,
            label(y)
        );
        y += y_step;
    }
    let mut x = 0.0;
    while x <= x_top + x_step / 2.0 {
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="#ddd"/><text x="{0:.1}" y="{3:.1}" text-anchor="middle">{4}</text>"##,
            px(x),
            TOP,
            TOP + plot_h,
            TOP + plot_h + 16.0,
            label(x)
        );
        x += x_step;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 12.0,
        escape(x_label)
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + plot_h / 2.0,
        escape(y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = s.points.iter().map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y))).collect();
        let _ = writeln!(
            svg,
            r#"<polyline class="series" data-name="{}" fill="none" stroke="{colour}" stroke-width="1.8" points="{}"/>"#,
            escape(&s.name),
            path.join(" ")
        );
        let ly = TOP + 10.0 + 20.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{0:.1}" y1="{1:.1}" x2="{2:.1}" y2="{1:.1}" stroke="{colour}" stroke-width="3"/><text x="{3:.1}" y="{4:.1}">{5}</text>"#,
            LEFT + plot_w + 14.0,
            ly,
            LEFT + plot_w + 34.0,
            LEFT + plot_w + 40.0,
            ly + 4.0,
            escape(&s.name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Writes the run's charts into `dir`; returns the files written.
pub fn write_all(dir: &Path, title: &str, result: &RunResult) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let t = |s: u64| s as f64 + 0.5;
    let percentile = |name: &str, f: fn(&crate::report::Second) -> Option<f64>| Series {
        name: name.into(),
        points: result.timeline.iter().filter_map(|s| f(s).map(|v| (t(s.t_s), v))).collect(),
    };
    let latency = line_chart(
        &format!("{title}: ack latency per second (from intended send time)"),
        "seconds since start",
        "ack latency, ms",
        &[
            percentile("p50", |s| s.p50_ms),
            percentile("p90", |s| s.p90_ms),
            percentile("p99", |s| s.p99_ms),
            percentile("max", |s| s.max_ms),
        ],
    );
    let throughput = line_chart(
        &format!("{title}: acked samples per second"),
        "seconds since start",
        "samples/s",
        &[Series {
            name: "samples/s".into(),
            points: result.timeline.iter().map(|s| (t(s.t_s), s.samples as f64)).collect(),
        }],
    );
    let mut files = Vec::new();
    for (name, svg) in [("latency.svg", latency), ("throughput.svg", throughput)] {
        let path = dir.join(name);
        std::fs::write(&path, svg)?;
        files.push(path);
    }
    let rss: Vec<(f64, f64)> = result
        .server
        .samples
        .iter()
        .filter_map(|s| s.rss_bytes.map(|b| (s.t_s, b as f64 / (1 << 20) as f64)))
        .collect();
    if !rss.is_empty() {
        let svg = line_chart(
            &format!("{title}: gateway resident memory"),
            "seconds since start",
            "MiB",
            &[Series { name: "RSS".into(), points: rss }],
        );
        let path = dir.join("server.svg");
        std::fs::write(&path, svg)?;
        files.push(path);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(100.0), 20.0);
        assert_eq!(nice_step(7.0), 2.0);
        assert_eq!(nice_step(0.9), 0.2);
    }

    #[test]
    fn chart_has_one_polyline_per_series_and_escapes_names() {
        let svg = line_chart(
            "a <b>",
            "x",
            "y",
            &[
                Series { name: "p50".into(), points: vec![(0.0, 1.0), (1.0, 2.0)] },
                Series { name: "p&99".into(), points: vec![(0.0, 3.0)] },
            ],
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a &lt;b&gt;") && svg.contains("p&amp;99"));
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
}
