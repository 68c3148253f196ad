//! Writing results: `<name>.json` with the numbers and the machine, and
//! `<name>.svg`, a bar chart of the side-by-side values.

use serde_json::{json, Value};
use std::path::Path;

/// The `q` quantile (0..=1) of `sorted` (ascending, not empty).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The middle value of `values` (the upper one of an even count; not
/// empty).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The `q` quantile of `latencies`, in milliseconds; zero for none.
pub fn percentile_ms(latencies: &[std::time::Duration], q: f64) -> f64 {
    let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    if ms.is_empty() {
        return 0.0;
    }
    ms.sort_by(f64::total_cmp);
    percentile(&ms, q)
}

pub struct Bar {
    pub label: String,
    pub value: f64,
}

/// Writes `<out>/<name>.json` and `<out>/<name>.svg`, and prints a summary.
pub fn write(out: &Path, name: &str, unit: &str, bars: &[Bar], mut details: Value) {
    let machine = json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
    });
    details["benchmark"] = json!(name);
    details["unit"] = json!(unit);
    details["measured_at_ms"] = json!(alluxio_common::now_ms());
    details["machine"] = machine;
    details["bars"] = json!(bars
        .iter()
        .map(|b| json!({"label": b.label, "value": b.value}))
        .collect::<Vec<_>>());
    let text = serde_json::to_string_pretty(&details).expect("serialisable");
    std::fs::write(out.join(format!("{name}.json")), &text).expect("write JSON result");
    std::fs::write(out.join(format!("{name}.svg")), svg(name, unit, bars)).expect("write plot");
    println!("{text}");
}

fn svg(title: &str, unit: &str, bars: &[Bar]) -> String {
    let width = 640.0;
    let bar_h = 34.0;
    let left = 230.0;
    let height = 60.0 + bars.len() as f64 * (bar_h + 12.0);
    let max = bars
        .iter()
        .map(|b| b.value)
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{title} ({unit})</text>\n"
    );
    for (i, b) in bars.iter().enumerate() {
        let y = 40.0 + i as f64 * (bar_h + 12.0);
        let w = (width - left - 90.0) * b.value / max;
        s.push_str(&format!(
            "<text x=\"10\" y=\"{}\">{}</text>\n<rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bar_h}\" fill=\"{}\"/>\n<text x=\"{:.1}\" y=\"{}\">{}</text>\n",
            y + bar_h / 2.0 + 5.0,
            b.label,
            if i == 0 { "#2b7bb9" } else { "#999999" },
            left + w + 6.0,
            y + bar_h / 2.0 + 5.0,
            format_value(b.value)
        ));
    }
    s.push_str("</svg>\n");
    s
}

fn format_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
