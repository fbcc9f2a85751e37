//! Small inline SVG charts for the HTML report: no scripts, no fonts, no images.

use std::fmt::Write;

use super::render::escape_html;

/// A series of values, one per x label.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub values: Vec<f64>,
}

/// Vertical bars over `labels` (e.g. days); several series are drawn over each other, first at the back.
pub fn bars(title: &str, labels: &[String], series: &[Series]) -> String {
    let (w, h, left, bottom, top) = (860.0, 240.0, 48.0, 36.0, 28.0);
    let plot_w = w - left - 12.0;
    let plot_h = h - bottom - top;
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1.0);
    let n = labels.len().max(1) as f64;
    let bw = plot_w / n;
    let mut svg = open_svg(w, h, title, left);
    // Axis and three gridlines with values.
    for k in 0..=3 {
        let v = max * k as f64 / 3.0;
        let y = top + plot_h - plot_h * k as f64 / 3.0;
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" class="ax" text-anchor="end">{}</text>"##,
            w - 12.0,
            left - 4.0,
            y + 4.0,
            fmt_num(v)
        );
    }
    for s in series {
        for (i, v) in s.values.iter().enumerate() {
            if *v <= 0.0 {
                continue;
            }
            let bh = plot_h * v / max;
            let _ = write!(
                svg,
                r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="{}"><title>{} {}: {}</title></rect>"#,
                left + bw * i as f64,
                top + plot_h - bh,
                (bw * 0.85).max(0.5),
                bh,
                s.color,
                escape_html(&labels[i]),
                escape_html(s.name),
                fmt_num(*v)
            );
        }
    }
    // First and last labels, and a legend.
    if let (Some(a), Some(b)) = (labels.first(), labels.last()) {
        let _ = write!(
            svg,
            r#"<text x="{left}" y="{}" class="ax">{}</text>"#,
            h - 18.0,
            escape_html(a)
        );
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" class="ax" text-anchor="end">{}</text>"#,
            w - 12.0,
            h - 18.0,
            escape_html(b)
        );
    }
    let mut lx = left;
    for s in series {
        let _ = write!(
            svg,
            r#"<rect x="{lx}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}" class="ax">{}</text>"#,
            h - 10.0,
            s.color,
            lx + 14.0,
            h - 1.0,
            escape_html(s.name)
        );
        lx += 24.0 + 7.0 * s.name.len() as f64;
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars, one per labelled item, largest first as given.
pub fn hbars(title: &str, items: &[(String, f64)], color: &str) -> String {
    let (w, row, left, top) = (860.0, 22.0, 190.0, 28.0);
    let h = top + row * items.len().max(1) as f64 + 8.0;
    let max = items.iter().map(|i| i.1).fold(0.0f64, f64::max).max(1.0);
    let mut svg = open_svg(w, h, title, 8.0);
    for (i, (label, v)) in items.iter().enumerate() {
        let y = top + row * i as f64;
        let bw = (w - left - 70.0) * v / max;
        let _ = write!(
            svg,
            r#"<text x="{}" y="{:.1}" class="ax" text-anchor="end">{}</text><rect x="{left}" y="{y:.1}" width="{bw:.1}" height="{:.1}" fill="{color}"/><text x="{:.1}" y="{:.1}" class="ax">{}</text>"#,
            left - 6.0,
            y + 14.0,
            escape_html(label),
            row - 6.0,
            left + bw + 4.0,
            y + 14.0,
            fmt_num(*v)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The `<svg>` element and its title, at `title_x`.
fn open_svg(w: f64, h: f64, title: &str, title_x: f64) -> String {
    let t = escape_html(title);
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{t}"><text x="{title_x}" y="16" class="ct">{t}</text>"#
    )
}

fn fmt_num(v: f64) -> String {
    if v >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
