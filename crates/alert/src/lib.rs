//! Defended areas and the alert book: which predicted impact ellipses touch which areas.
//!
//! Sans-IO: areas are parsed from GeoJSON text the caller read; predictions and `now` go in,
//! alert changes (raised, updated, withdrawn) come out for the caller to log and publish.
//!
//! Geometry. Each area is a set of polygons in longitude/latitude. An impact prediction is a
//! Gaussian in the local east-north plane at its mean point. The polygon is projected onto
//! that plane (equirectangular about the mean point, exact enough within the few hundred km
//! that matter) and whitened by the covariance, so the k-σ ellipse becomes a circle of radius k:
//! the ellipse touches the polygon when the mean is inside it or some edge passes within k of
//! the origin. Confidence is the probability mass inside the area, counted over a fixed set of
//! 1,024 sample points of the Gaussian (a deterministic quasi-random sequence, so the same
//! prediction always gives the same number).

mod geojson;

pub use geojson::{parse_areas, AreaError};

use nalgebra::{Matrix2, Vector2};
use std::collections::BTreeMap;
use vocab::UtcNanos;

/// Squared scale of the 50% and 95% ellipses of a 2-D Gaussian (χ²₂ quantiles).
pub const CHI2_2_50: f64 = 1.386_294;
pub const CHI2_2_95: f64 = 5.991_465;

/// Points of the Gaussian counted for the confidence: the error of a count over 1,024 points is
/// under 1.6 percentage points (1σ), finer than any operator decision needs.
const CONFIDENCE_SAMPLES: usize = 1024;

/// The most areas a node defends: each is tested against every prediction.
pub const MAX_AREAS: usize = 256;
/// The most vertices over all of one area's polygons.
pub const MAX_AREA_VERTICES: usize = 200_000;

const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A defended area: a name and polygons (outer ring then holes), lon/lat degrees.
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    pub name: String,
    pub polygons: Vec<Vec<Vec<(f64, f64)>>>,
    /// Bounding box: (lon_min, lat_min, lon_max, lat_max), with longitudes unwrapped.
    bbox: (f64, f64, f64, f64),
}

impl Area {
    pub fn new(name: String, polygons: Vec<Vec<Vec<(f64, f64)>>>) -> Area {
        let mut bbox = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for ring in polygons.iter().flatten() {
            for &(lon, lat) in ring {
                bbox = (bbox.0.min(lon), bbox.1.min(lat), bbox.2.max(lon), bbox.3.max(lat));
            }
        }
        Area { name, polygons, bbox }
    }
}

/// What an alert is raised on: one track's impact prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub lat_deg: f64,
    pub lon_deg: f64,
    /// East-north covariance of the impact point (m²).
    pub cov_en_m2: Matrix2<f64>,
    pub impact_time: UtcNanos,
    pub time_to_impact_sd_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The 95% ellipse touches the area.
    Watch,
    /// The 50% ellipse touches it.
    Warning,
    /// The predicted impact point lies in it.
    Impact,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Watch => "watch",
            Level::Warning => "warning",
            Level::Impact => "impact",
        }
    }
}

/// How an impact prediction stands against one area.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exposure {
    pub level: Level,
    /// Probability that the impact falls inside the area.
    pub confidence: f64,
}

/// A tangent-plane projection about a point, whitened by a covariance.
struct Frame {
    lat0: f64,
    lon0: f64,
    cos_lat0: f64,
    /// Maps east-north metres to whitened units (L⁻¹ of the Cholesky factor).
    whiten: Matrix2<f64>,
    /// Its inverse: whitened units to metres.
    colour: Matrix2<f64>,
}

impl Frame {
    fn new(p: &Prediction) -> Option<Frame> {
        let chol = p.cov_en_m2.cholesky()?;
        let l = chol.l();
        let whiten = l.try_inverse()?;
        Some(Frame { lat0: p.lat_deg, lon0: p.lon_deg, cos_lat0: p.lat_deg.to_radians().cos(), whiten, colour: l })
    }

    fn unwrap_lon(&self, lon: f64) -> f64 {
        let mut d = lon - self.lon0;
        while d > 180.0 {
            d -= 360.0;
        }
        while d < -180.0 {
            d += 360.0;
        }
        d
    }

    /// Whitened coordinates of a lon/lat point.
    fn project(&self, lon: f64, lat: f64) -> Vector2<f64> {
        let e = self.unwrap_lon(lon).to_radians() * self.cos_lat0 * EARTH_RADIUS_M;
        let n = (lat - self.lat0).to_radians() * EARTH_RADIUS_M;
        self.whiten * Vector2::new(e, n)
    }

    /// Lon/lat of a whitened point.
    fn unproject(&self, w: Vector2<f64>) -> (f64, f64) {
        let en = self.colour * w;
        let lat = self.lat0 + (en.y / EARTH_RADIUS_M).to_degrees();
        let lon = self.lon0 + (en.x / (EARTH_RADIUS_M * self.cos_lat0.max(1e-6))).to_degrees();
        (lon, lat)
    }
}

/// Whether `pt` lies inside the polygon (outer ring, holes) by the even-odd rule.
fn inside(polygon: &[Vec<Vector2<f64>>], pt: Vector2<f64>) -> bool {
    let mut odd = false;
    for ring in polygon {
        let n = ring.len();
        for i in 0..n {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            if (a.y > pt.y) != (b.y > pt.y) && pt.x < a.x + (pt.y - a.y) / (b.y - a.y) * (b.x - a.x) {
                odd = !odd;
            }
        }
    }
    odd
}

fn segment_distance2(a: Vector2<f64>, b: Vector2<f64>) -> f64 {
    let ab = b - a;
    let t = if ab.norm_squared() > 0.0 { (-a.dot(&ab) / ab.norm_squared()).clamp(0.0, 1.0) } else { 0.0 };
    (a + ab * t).norm_squared()
}

/// The fixed sample points of a standard 2-D Gaussian (a Halton sequence through the inverse
/// of the Rayleigh radius distribution), computed once.
fn gaussian_samples() -> &'static [Vector2<f64>] {
    use std::sync::OnceLock;
    static SAMPLES: OnceLock<Vec<Vector2<f64>>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let halton = |mut i: usize, base: usize| {
            let (mut f, mut r) = (1.0, 0.0);
            while i > 0 {
                f /= base as f64;
                r += f * (i % base) as f64;
                i /= base;
            }
            r
        };
        (1..=CONFIDENCE_SAMPLES)
            .map(|i| {
                let u = halton(i, 2);
                let v = halton(i, 3);
                let r = (-2.0 * (1.0 - u).ln()).sqrt();
                let th = std::f64::consts::TAU * v;
                Vector2::new(r * th.cos(), r * th.sin())
            })
            .collect()
    })
}

/// How `p` stands against `area`, or `None` if even its 95% ellipse misses it.
pub fn exposure(area: &Area, p: &Prediction) -> Option<Exposure> {
    let frame = Frame::new(p)?;
    // Bounding-box prefilter: the 95% ellipse lies within √χ² times the largest σ.
    let sd_max = p.cov_en_m2.symmetric_eigenvalues().max().max(0.0).sqrt();
    let reach_deg = (CHI2_2_95.sqrt() * sd_max / EARTH_RADIUS_M).to_degrees();
    let lon_reach = reach_deg / frame.cos_lat0.max(1e-3);
    let dlon_min = frame.unwrap_lon(area.bbox.0);
    let dlon_max = dlon_min + (area.bbox.2 - area.bbox.0);
    if p.lat_deg + reach_deg < area.bbox.1
        || p.lat_deg - reach_deg > area.bbox.3
        || (dlon_min > lon_reach || dlon_max < -lon_reach) && (area.bbox.2 - area.bbox.0) < 359.0
    {
        return None;
    }
    let mut best: Option<Level> = None;
    let mut projected = Vec::new();
    for polygon in &area.polygons {
        let rings: Vec<Vec<Vector2<f64>>> =
            polygon.iter().map(|r| r.iter().map(|&(lon, lat)| frame.project(lon, lat)).collect()).collect();
        let level = if inside(&rings, Vector2::zeros()) {
            Some(Level::Impact)
        } else {
            let d2 = rings
                .iter()
                .flat_map(|r| (0..r.len()).map(move |i| segment_distance2(r[i], r[(i + 1) % r.len()])))
                .fold(f64::INFINITY, f64::min);
            if d2 <= CHI2_2_50 {
                Some(Level::Warning)
            } else if d2 <= CHI2_2_95 {
                Some(Level::Watch)
            } else {
                None
            }
        };
        if level.is_some() {
            best = best.max(level);
        }
        projected.push(rings);
    }
    let level = best?;
    let hits = gaussian_samples().iter().filter(|s| projected.iter().any(|rings| inside(rings, **s))).count();
    Some(Exposure { level, confidence: hits as f64 / CONFIDENCE_SAMPLES as f64 })
}

/// The boundary of the k-σ ellipse of a prediction as lon/lat points (for maps and exports).
pub fn ellipse_ring(p: &Prediction, chi2: f64, points: usize) -> Vec<(f64, f64)> {
    let Some(frame) = Frame::new(p) else { return Vec::new() };
    let r = chi2.sqrt();
    (0..=points)
        .map(|i| {
            let th = std::f64::consts::TAU * i as f64 / points as f64;
            frame.unproject(Vector2::new(r * th.cos(), r * th.sin()))
        })
        .collect()
}

/// Which way an alert changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Raised,
    Updated,
    Withdrawn,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Raised => "raised",
            Change::Updated => "updated",
            Change::Withdrawn => "withdrawn",
        }
    }
}

/// An alert as it stands: one track against one area.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Stable over the alert's life: `A<track>-<area>`.
    pub id: String,
    pub track: u64,
    pub area: String,
    pub level: Level,
    pub confidence: f64,
    pub impact_time: UtcNanos,
    pub time_to_impact_sd_s: f64,
    pub impact_lat_deg: f64,
    pub impact_lon_deg: f64,
    pub raised_at: UtcNanos,
    pub updated_at: UtcNanos,
}

/// A change to publish and log.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertChange {
    pub change: Change,
    pub alert: Alert,
}

/// An alert is re-published (and logged) as updated only when something an operator acts on
/// moved: the level, the confidence by this much, or the impact time by this many seconds.
const CONFIDENCE_STEP: f64 = 0.10;
const IMPACT_TIME_STEP_S: f64 = 5.0;

/// All current alerts, keyed by (track, area).
#[derive(Debug, Default)]
pub struct AlertBook {
    areas: Vec<Area>,
    current: BTreeMap<(u64, usize), Alert>,
}

impl AlertBook {
    pub fn new(areas: Vec<Area>) -> AlertBook {
        AlertBook { areas, current: BTreeMap::new() }
    }

    pub fn areas(&self) -> &[Area] {
        &self.areas
    }

    /// Current alerts, most severe first.
    pub fn current(&self) -> Vec<Alert> {
        let mut v: Vec<Alert> = self.current.values().cloned().collect();
        v.sort_by(|a, b| b.level.cmp(&a.level).then(a.impact_time.cmp(&b.impact_time)).then(a.id.cmp(&b.id)));
        v
    }

    /// A new impact prediction of `track` at `now`: raises, updates or withdraws its alerts.
    pub fn predict(&mut self, track: u64, p: &Prediction, now: UtcNanos) -> Vec<AlertChange> {
        let mut out = Vec::new();
        for (i, area) in self.areas.iter().enumerate() {
            let key = (track, i);
            let exposure = if p.impact_time > now { exposure(area, p) } else { None };
            match (exposure, self.current.get_mut(&key)) {
                (Some(e), None) => {
                    let alert = Alert {
                        id: format!("A{track}-{}", area.name.to_lowercase().replace(' ', "-")),
                        track,
                        area: area.name.clone(),
                        level: e.level,
                        confidence: e.confidence,
                        impact_time: p.impact_time,
                        time_to_impact_sd_s: p.time_to_impact_sd_s,
                        impact_lat_deg: p.lat_deg,
                        impact_lon_deg: p.lon_deg,
                        raised_at: now,
                        updated_at: now,
                    };
                    self.current.insert(key, alert.clone());
                    out.push(AlertChange { change: Change::Raised, alert });
                }
                (Some(e), Some(a)) => {
                    let moved = e.level != a.level
                        || (e.confidence - a.confidence).abs() >= CONFIDENCE_STEP
                        || p.impact_time.secs_since(a.impact_time).abs() >= IMPACT_TIME_STEP_S;
                    if moved {
                        a.level = e.level;
                        a.confidence = e.confidence;
                        a.impact_time = p.impact_time;
                        a.time_to_impact_sd_s = p.time_to_impact_sd_s;
                        a.impact_lat_deg = p.lat_deg;
                        a.impact_lon_deg = p.lon_deg;
                        a.updated_at = now;
                        out.push(AlertChange { change: Change::Updated, alert: a.clone() });
                    }
                }
                (None, Some(_)) => {
                    if let Some(mut a) = self.current.remove(&key) {
                        a.updated_at = now;
                        out.push(AlertChange { change: Change::Withdrawn, alert: a });
                    }
                }
                (None, None) => {}
            }
        }
        out
    }

    /// Withdraws the alerts of tracks that are gone, and of impacts now in the past.
    pub fn expire(&mut self, live_tracks: &[u64], now: UtcNanos) -> Vec<AlertChange> {
        let gone: Vec<(u64, usize)> = self
            .current
            .iter()
            .filter(|((t, _), a)| {
                !live_tracks.contains(t) || a.impact_time.add_secs_f64(3.0 * a.time_to_impact_sd_s + 10.0) < now
            })
            .map(|(k, _)| *k)
            .collect();
        gone.into_iter()
            .filter_map(|k| self.current.remove(&k))
            .map(|mut alert| {
                alert.updated_at = now;
                AlertChange { change: Change::Withdrawn, alert }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(name: &str, lon0: f64, lat0: f64, side_deg: f64) -> Area {
        let ring =
            vec![(lon0, lat0), (lon0 + side_deg, lat0), (lon0 + side_deg, lat0 + side_deg), (lon0, lat0 + side_deg)];
        Area::new(name.into(), vec![vec![ring]])
    }

    fn prediction(lon: f64, lat: f64, sd_m: f64) -> Prediction {
        Prediction {
            lat_deg: lat,
            lon_deg: lon,
            cov_en_m2: Matrix2::identity() * sd_m * sd_m,
            impact_time: UtcNanos::from_nanos(100 * vocab::NANOS_PER_SECOND),
            time_to_impact_sd_s: 2.0,
        }
    }

    #[test]
    fn levels_follow_the_ellipses() {
        let area = square("Box", 140.0, 39.0, 1.0);
        // Mean inside: impact, confidence near one.
        let e = exposure(&area, &prediction(140.5, 39.5, 1_000.0)).unwrap();
        assert_eq!(e.level, Level::Impact);
        assert!(e.confidence > 0.99, "{e:?}");
        // Mean 1σ·1.0 outside the western edge (σ = 10 km, 10 km out): within the 50% radius (1.18σ).
        let km_per_deg_lon = EARTH_RADIUS_M * 39.5f64.to_radians().cos() * std::f64::consts::PI / 180.0;
        let e = exposure(&area, &prediction(140.0 - 10_000.0 / km_per_deg_lon, 39.5, 10_000.0)).unwrap();
        assert_eq!(e.level, Level::Warning);
        // Analytic: the mass beyond a straight edge one σ away is 1 − Φ(1) = 0.159.
        assert!((e.confidence - 0.159).abs() < 0.03, "{e:?}");
        // 2σ out: only the 95% ellipse (2.45σ) reaches.
        let e = exposure(&area, &prediction(140.0 - 20_000.0 / km_per_deg_lon, 39.5, 10_000.0)).unwrap();
        assert_eq!(e.level, Level::Watch);
        // 3σ out: nothing.
        assert!(exposure(&area, &prediction(140.0 - 30_000.0 / km_per_deg_lon, 39.5, 10_000.0)).is_none());
    }

    #[test]
    fn antimeridian_areas_work() {
        let area = square("Date line", 179.5, -15.0, 1.0);
        assert_eq!(exposure(&area, &prediction(-179.8, -14.5, 1_000.0)).unwrap().level, Level::Impact);
    }

    #[test]
    fn alerts_are_raised_updated_and_withdrawn() {
        let mut book = AlertBook::new(vec![square("Box", 140.0, 39.0, 1.0)]);
        let now = UtcNanos::from_nanos(0);
        let c = book.predict(7, &prediction(140.5, 39.5, 1_000.0), now);
        assert_eq!((c.len(), c[0].change, c[0].alert.level), (1, Change::Raised, Level::Impact));
        // A small move changes nothing an operator acts on.
        assert!(book.predict(7, &prediction(140.51, 39.5, 1_000.0), now).is_empty());
        // The prediction moves off: withdrawn.
        let c = book.predict(7, &prediction(150.0, 39.5, 1_000.0), now);
        assert_eq!(c[0].change, Change::Withdrawn);
        assert!(book.current().is_empty());
        // Raised again, then the track dies.
        book.predict(7, &prediction(140.5, 39.5, 1_000.0), now);
        let c = book.expire(&[], now);
        assert_eq!((c.len(), c[0].change), (1, Change::Withdrawn));
    }
}
