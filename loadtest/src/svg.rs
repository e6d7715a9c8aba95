//! Hand-written SVG charts: line charts over time and a log-scale latency histogram. Small and
//! dependency-free; the report needs nothing a plotting crate would add.

use std::fmt::Write as _;

const W: f64 = 900.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 260.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLORS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn frame(title: &str, x_label: &str, y_label: &str, x_max: Option<f64>, y_max: f64) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/><text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        (W - RIGHT + LEFT) / 2.0,
        esc(title)
    );
    let (x0, y0, x1, y1) = (LEFT, H - BOTTOM, W - RIGHT, TOP);
    let _ = write!(
        s,
        r#"<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/><line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>"#
    );
    for i in 0..=5 {
        let f = i as f64 / 5.0;
        let y = y0 - f * (y0 - y1);
        let x = x0 + f * (x1 - x0);
        // Whole numbers once the axis spans tens; three decimals below that.
        let y_label = if y_max >= 10.0 {
            format!("{:.0}", f * y_max)
        } else {
            format!("{:.3}", f * y_max)
        };
        let _ = write!(
            s,
            r##"<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{y_label}</text>"##,
            x0 - 4.0,
            y + 4.0,
        );
        // A log-scale chart (x_max None) writes its own x labels.
        if let Some(x_max) = x_max {
            let _ = write!(
                s,
                r#"<text x="{x}" y="{}" text-anchor="middle">{:.0}</text>"#,
                y0 + 16.0,
                f * x_max
            );
        }
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">{}</text>"#,
        (x0 + x1) / 2.0,
        H - 12.0,
        esc(x_label),
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
        esc(y_label)
    );
    s
}

/// A line chart of named series of (x, y) points, with a legend on the right.
pub fn lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> String {
    let pts = series.iter().flat_map(|(_, p)| p.iter());
    let x_max = pts.clone().map(|p| p.0).fold(1.0, f64::max);
    let y_max = pts.map(|p| p.1).fold(0.0, f64::max).max(1e-3) * 1.1;
    let mut s = frame(title, x_label, y_label, Some(x_max), y_max);
    let (x0, y0, x1, y1) = (LEFT, H - BOTTOM, W - RIGHT, TOP);
    for (i, (name, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    x0 + x / x_max * (x1 - x0),
                    y0 - y / y_max * (y0 - y1)
                )
            })
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            path.join(" ")
        );
        let ly = TOP + 14.0 * i as f64;
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            x1 + 10.0,
            ly,
            x1 + 24.0,
            ly + 9.0,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// Bars of (bucket upper bound in ms, count), with a logarithmic latency axis.
pub fn histogram(title: &str, bars: &[(f64, u64)]) -> String {
    let lo = bars
        .first()
        .map(|b| b.0)
        .unwrap_or(0.001)
        .max(1e-3)
        .log10()
        .floor();
    let hi = bars
        .last()
        .map(|b| b.0)
        .unwrap_or(1.0)
        .max(1e-3)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let c_max = bars.iter().map(|b| b.1).max().unwrap_or(1).max(1) as f64;
    let mut s = frame(
        title,
        "latency (ms, log scale)",
        "requests",
        None,
        c_max * 1.1,
    );
    let (x0, y0, x1, y1) = (LEFT, H - BOTTOM, W - RIGHT, TOP);
    // Decades as x labels.
    let mut d = lo;
    while d <= hi {
        let x = x0 + (d - lo) / (hi - lo) * (x1 - x0);
        let _ = write!(
            s,
            r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
            y0 + 16.0,
            10f64.powf(d)
        );
        d += 1.0;
    }
    let bar_w = ((x1 - x0) / ((hi - lo) * 47.0)).max(1.0);
    for (ub, c) in bars {
        let x = x0 + (ub.max(1e-3).log10() - lo) / (hi - lo) * (x1 - x0);
        let h = *c as f64 / (c_max * 1.1) * (y0 - y1);
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{bar_w:.1}" height="{h:.1}" fill="#1f77b4"/>"##,
            x - bar_w,
            y0 - h
        );
    }
    s.push_str("</svg>");
    s
}

/// Several histograms of (bucket upper bound in ms, count) on one logarithmic latency axis, a
/// line per series (one per server), each as a share of its own samples so sizes compare.
pub fn histograms(title: &str, series: &[(String, Vec<(f64, u64)>)]) -> String {
    let all = series.iter().flat_map(|(_, b)| b.iter());
    let lo = all
        .clone()
        .map(|b| b.0)
        .fold(f64::INFINITY, f64::min)
        .max(1e-3)
        .log10()
        .floor();
    let lo = if lo.is_finite() { lo } else { -3.0 };
    let hi = all
        .map(|b| b.0)
        .fold(1e-3, f64::max)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let share = |bars: &Vec<(f64, u64)>| -> Vec<(f64, f64)> {
        let total = bars.iter().map(|b| b.1).sum::<u64>().max(1) as f64;
        bars.iter()
            .map(|(ub, c)| (*ub, *c as f64 / total * 100.0))
            .collect()
    };
    let shares: Vec<Vec<(f64, f64)>> = series.iter().map(|(_, b)| share(b)).collect();
    let y_max = shares
        .iter()
        .flatten()
        .map(|p| p.1)
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.1;
    let mut s = frame(
        title,
        "latency (ms, log scale)",
        "% of samples",
        None,
        y_max,
    );
    let (x0, y0, x1, y1) = (LEFT, H - BOTTOM, W - RIGHT, TOP);
    let mut d = lo;
    while d <= hi {
        let x = x0 + (d - lo) / (hi - lo) * (x1 - x0);
        let _ = write!(
            s,
            r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
            y0 + 16.0,
            10f64.powf(d)
        );
        d += 1.0;
    }
    for (i, ((name, _), points)) in series.iter().zip(&shares).enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(ub, pct)| {
                format!(
                    "{:.1},{:.1}",
                    x0 + (ub.max(1e-3).log10() - lo) / (hi - lo) * (x1 - x0),
                    y0 - pct / y_max * (y0 - y1)
                )
            })
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            path.join(" ")
        );
        let ly = TOP + 14.0 * i as f64;
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            x1 + 10.0,
            ly,
            x1 + 24.0,
            ly + 9.0,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}
