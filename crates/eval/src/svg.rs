//! Plots as self-contained SVG: error against the bound over time, and a map of truth and
//! predicted impact ellipses. Plain text output, no plotting library.

use crate::report::ScenarioReport;
use crate::run::RunOutcome;
use fusion::predict::ELLIPSE_SCALE_95;
use std::fmt::Write;

const W: f64 = 800.0;
const H: f64 = 480.0;
const MARGIN: f64 = 60.0;

fn header(title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"#111\"/>\n<text x=\"{}\" y=\"24\" fill=\"#eee\" font-size=\"15\" text-anchor=\"middle\">{}</text>\n",
        W / 2.0,
        escape(title)
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Position RMSE and the PCRLB against time since launch, log scale.
pub fn error_plot(r: &ScenarioReport) -> String {
    let mut s = header(&format!("{}: position RMSE vs PCRLB ({} runs)", r.scenario, r.runs));
    let xs: Vec<f64> = r.bins.iter().map(|b| b.t_since_launch_s).collect();
    let ys: Vec<f64> =
        r.bins.iter().flat_map(|b| [b.pos_rmse_m, b.pcrlb_pos_m]).filter(|v| v.is_finite() && *v > 0.0).collect();
    if xs.is_empty() || ys.is_empty() {
        s.push_str("</svg>\n");
        return s;
    }
    let (x0, x1) = (0.0, xs.iter().fold(0.0f64, |a, b| a.max(*b)) + crate::report::BIN_S);
    let (y0, y1) = (
        ys.iter().fold(f64::INFINITY, |a, b| a.min(*b)).log10().floor(),
        ys.iter().fold(0.0f64, |a, b| a.max(*b)).log10().ceil(),
    );
    let px = |x: f64| MARGIN + (x - x0) / (x1 - x0) * (W - 2.0 * MARGIN);
    let py = |y: f64| H - MARGIN - (y.log10() - y0) / (y1 - y0).max(1.0) * (H - 2.0 * MARGIN);
    for d in (y0 as i32)..=(y1 as i32) {
        let y = py(10f64.powi(d));
        let _ = writeln!(s, "<line x1=\"{MARGIN}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#333\"/><text x=\"{}\" y=\"{:.1}\" fill=\"#aaa\" text-anchor=\"end\">1e{d} m</text>", W - MARGIN, MARGIN - 6.0, y + 4.0);
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" fill=\"#aaa\" text-anchor=\"middle\">time since launch (s), 0 – {x1:.0}</text>",
        W / 2.0,
        H - 20.0
    );
    let line = |vals: Vec<(f64, f64)>, colour: &str, label: &str, row: f64| {
        let pts: Vec<String> = vals
            .iter()
            .filter(|(_, y)| y.is_finite() && *y > 0.0)
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{label}</text>\n",
            pts.join(" "),
            W - MARGIN - 150.0,
            MARGIN + row * 16.0
        )
    };
    let mid = crate::report::BIN_S / 2.0;
    s.push_str(&line(
        r.bins.iter().map(|b| (b.t_since_launch_s + mid, b.pos_rmse_m)).collect(),
        "#4cf",
        "trilink position RMSE",
        0.0,
    ));
    s.push_str(&line(
        r.bins.iter().map(|b| (b.t_since_launch_s + mid, b.pcrlb_pos_m)).collect(),
        "#fa4",
        "PCRLB (physical limit)",
        1.0,
    ));
    s.push_str("</svg>\n");
    s
}

/// Truth ground tracks, impact points and the last 95% impact ellipses of the first run.
pub fn map_plot(title: &str, run: &RunOutcome) -> String {
    let mut s = header(title);
    let pts: Vec<(f64, f64)> = run.truth_paths.iter().flatten().copied().chain(run.impacts.iter().copied()).collect();
    if pts.is_empty() {
        s.push_str("</svg>\n");
        return s;
    }
    let (mut lon0, mut lon1, mut lat0, mut lat1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for (lon, lat) in &pts {
        lon0 = lon0.min(*lon);
        lon1 = lon1.max(*lon);
        lat0 = lat0.min(*lat);
        lat1 = lat1.max(*lat);
    }
    let pad = 0.5;
    let (lon0, lon1, lat0, lat1) = (lon0 - pad, lon1 + pad, lat0 - pad, lat1 + pad);
    let scale = ((W - 2.0 * MARGIN) / (lon1 - lon0)).min((H - 2.0 * MARGIN) / (lat1 - lat0));
    let px = |lon: f64| MARGIN + (lon - lon0) * scale;
    let py = |lat: f64| H - MARGIN - (lat - lat0) * scale;
    for (i, path) in run.truth_paths.iter().enumerate() {
        let p: Vec<String> = path.iter().map(|(lo, la)| format!("{:.1},{:.1}", px(*lo), py(*la))).collect();
        let _ =
            writeln!(s, "<polyline fill=\"none\" stroke=\"#8c8\" stroke-width=\"1.5\" points=\"{}\"/>", p.join(" "));
        if let Some((lo, la)) = run.impacts.get(i) {
            let _ = writeln!(s, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#f44\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#eee\">{}</text>", px(*lo), py(*la), px(*lo) + 6.0, py(*la) - 6.0, escape(&run.launches[i]));
        }
        if let Some(pred) = run.last_impact_predictions.get(i).and_then(Option::as_ref) {
            let e = pred.ellipse(ELLIPSE_SCALE_95);
            let m_per_deg = 111_320.0;
            let coslat = pred.point.lat_rad.cos();
            let ring: Vec<String> = (0..=48)
                .map(|k| {
                    let a = k as f64 / 48.0 * std::f64::consts::TAU;
                    let (u, v) = (e.semi_major_m * a.cos(), e.semi_minor_m * a.sin());
                    let (sa, ca) = e.major_azimuth_rad.sin_cos();
                    let (east, north) = (u * sa + v * ca, u * ca - v * sa);
                    format!(
                        "{:.1},{:.1}",
                        px(pred.point.lon_deg() + east / (m_per_deg * coslat)),
                        py(pred.point.lat_deg() + north / m_per_deg)
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "<polygon fill=\"none\" stroke=\"#fc4\" stroke-width=\"1.5\" points=\"{}\"/>",
                ring.join(" ")
            );
        }
    }
    // Tracks over the truth, dashed, so both show where they coincide.
    for path in &run.track_paths {
        let p: Vec<String> = path.iter().map(|(lo, la)| format!("{:.1},{:.1}", px(*lo), py(*la))).collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"#4cf\" stroke-width=\"1\" stroke-dasharray=\"4 3\" points=\"{}\"/>",
            p.join(" ")
        );
    }
    let _ = writeln!(s, "<text x=\"{MARGIN}\" y=\"{}\" fill=\"#aaa\">green: truth · dashed blue: trilink tracks · red: impact · yellow: 95% impact ellipse</text>", H - 34.0);
    let _ = writeln!(
        s,
        "<text x=\"{MARGIN}\" y=\"{}\" fill=\"#aaa\">lon {lon0:.1}…{lon1:.1} °E, lat {lat0:.1}…{lat1:.1} °N</text>",
        H - 18.0
    );
    s.push_str("</svg>\n");
    s
}
