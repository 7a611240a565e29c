//! Scenario files (TOML): what launches, what sensors each nation owns, and the seed.
//!
//! The file types below are the format boundary (they alone derive serde); `parse` turns them
//! into the validated [`Scenario`]. Every error names the file, the line and the field. The
//! format is documented for integrators in `docs/scenarios.md`.

use crate::orbit::Orbit;
use crate::sensors::{Radar, SpaceIr};
use flight::atmosphere::AirDeparture;
use flight::{missile_class, Shape, Stage, Vehicle, MISSILE_CLASSES};
use geodesy::{Geodetic, Wgs84};
use serde::Deserialize;
use std::collections::HashSet;
use std::ops::Range;
use toml::Spanned;
use vocab::{Nation, UtcNanos};

/// Limits that keep a scenario to what a machine can simulate, each far above any real need.
pub const MAX_LAUNCHES: usize = 256;
pub const MAX_SENSORS: usize = 256;
pub const MAX_DURATION_S: f64 = 6.0 * 3600.0;
/// Clutter beyond this many false alarms per scan floods the output without testing anything new.
pub const MAX_FALSE_ALARMS_PER_SCAN: f64 = 1_000.0;
/// Radars report at most 100 times a second; IR revisits at most 20 times a second.
pub const MIN_UPDATE_INTERVAL_S: f64 = 0.01;
pub const MIN_REVISIT_INTERVAL_S: f64 = 0.05;
/// Ids appear in every output line; 64 bytes is ample for names like `JPN-FPS5-SADO`.
pub const MAX_ID_LEN: usize = 64;

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    pub start: UtcNanos,
    /// `None`: until 30 s after the last impact.
    pub duration_s: Option<f64>,
    pub truth_interval_s: f64,
    pub launches: Vec<LaunchPlan>,
    pub radars: Vec<Radar>,
    pub space_ir: Vec<SpaceIr>,
    /// How far each run's air departs from the standard atmosphere.
    pub atmosphere: Atmosphere,
}

/// The spread of the day's air a run flies in (`[atmosphere]`): each run draws an
/// [`AirDeparture`] from its seed, an offset of σ `density_sd` and three layers of rms
/// `layer_sd` each. Both zero (the default) fly the 1976 standard atmosphere itself.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Atmosphere {
    pub density_sd: f64,
    pub layer_sd: f64,
}

/// Largest `[atmosphere]` spreads accepted: beyond these a draw could thin the air to nothing.
pub const MAX_DENSITY_SD: f64 = 0.3;
pub const MAX_LAYER_SD: f64 = 0.1;

impl Atmosphere {
    /// The air of the run seeded `seed`, or `None` for the standard. Drawn from its own stream,
    /// labelled with the empty string (no sensor's id), so it changes no sensor's noise.
    pub fn draw(&self, seed: u64) -> Option<AirDeparture> {
        if self.density_sd == 0.0 && self.layer_sd == 0.0 {
            return None;
        }
        let mut rng = crate::rng::Rng::for_stream(seed, "");
        let offset = self.density_sd * rng.normal();
        // A sine of amplitude a has rms a/√2: the amplitude's σ is √2 × layer_sd.
        let mut layers = [(0.0, 0.0); 3];
        for l in &mut layers {
            *l = (std::f64::consts::SQRT_2 * self.layer_sd * rng.normal(), rng.uniform_in(0.0, std::f64::consts::TAU));
        }
        Some(AirDeparture { offset, layers })
    }
}

/// Where a launch is aimed.
#[derive(Debug, Clone, PartialEq)]
pub enum Aim {
    Azimuth { azimuth_rad: f64 },
    Point { target: Geodetic },
}

#[derive(Debug, Clone)]
pub struct LaunchPlan {
    pub id: String,
    /// The class name, or "custom" for explicit staging.
    pub class: String,
    pub vehicle: Vehicle,
    pub site: Geodetic,
    pub time: UtcNanos,
    pub aim: Aim,
    /// The shape; its range is filled from the aim point when the file gives none.
    pub shape: Shape,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("failed to read scenario {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("failed to parse scenario {path}: {message}")]
    Syntax { path: String, message: String },
    #[error("invalid scenario {path}:{line}: {what}: field `{field}`: {reason}")]
    Invalid { path: String, line: usize, what: String, field: String, reason: String },
}

// ---- The file format ---------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileScenario {
    name: String,
    seed: u64,
    start: Spanned<toml::value::Datetime>,
    duration_s: Option<Spanned<f64>>,
    truth_interval_s: Option<Spanned<f64>>,
    #[serde(default)]
    launch: Vec<Spanned<FileLaunch>>,
    #[serde(default)]
    radar: Vec<Spanned<FileRadar>>,
    #[serde(default)]
    space_ir: Vec<Spanned<FileSpaceIr>>,
    atmosphere: Option<Spanned<FileAtmosphere>>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct FileAtmosphere {
    #[serde(default)]
    density_sd: f64,
    #[serde(default)]
    layer_sd: f64,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct FilePoint {
    lat_deg: f64,
    lon_deg: f64,
    #[serde(default)]
    alt_m: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLaunch {
    id: String,
    site: FilePoint,
    time: toml::value::Datetime,
    class: Option<String>,
    vehicle: Option<FileVehicle>,
    azimuth_deg: Option<f64>,
    aim: Option<FilePoint>,
    shape: String,
    range_km: Option<f64>,
    apogee_km: Option<f64>,
    kick_deg: Option<f64>,
    cutoff_s: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileVehicle {
    stages: Vec<FileStage>,
    payload_kg: f64,
    boost_cd_area_m2: f64,
    reentry_ballistic_coeff_kg_m2: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStage {
    propellant_kg: f64,
    dry_kg: f64,
    burn_time_s: f64,
    isp_s: Option<f64>,
    thrust_n: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRadar {
    id: String,
    nation: String,
    site: FilePoint,
    #[serde(default)]
    boresight_az_deg: f64,
    #[serde(default = "full_circle")]
    sector_half_width_deg: f64,
    #[serde(default = "default_min_el")]
    min_elevation_deg: f64,
    #[serde(default = "default_max_el")]
    max_elevation_deg: f64,
    max_range_km: f64,
    update_interval_s: f64,
    detection_probability: f64,
    sigma_range_m: f64,
    sigma_az_mrad: f64,
    sigma_el_mrad: f64,
    sigma_range_rate_mps: Option<f64>,
    #[serde(default)]
    false_alarms_per_scan: f64,
}

fn full_circle() -> f64 {
    180.0
}
fn default_min_el() -> f64 {
    0.5
}
fn default_max_el() -> f64 {
    85.0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpaceIr {
    id: String,
    nation: String,
    orbit: FileOrbit,
    revisit_interval_s: f64,
    detection_probability: f64,
    sigma_los_urad: f64,
    #[serde(default = "default_cloud_tops")]
    min_target_alt_km: f64,
}

fn default_cloud_tops() -> f64 {
    10.0
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum FileOrbit {
    Geo {
        lon_deg: f64,
    },
    Keplerian {
        perigee_alt_km: f64,
        apogee_alt_km: f64,
        inclination_deg: f64,
        raan_deg: f64,
        arg_perigee_deg: f64,
        mean_anomaly_deg: f64,
    },
}

// ---- Validation ----------------------------------------------------------------------------

struct Checker<'a> {
    path: &'a str,
    text: &'a str,
}

impl Checker<'_> {
    fn line_of(&self, span: &Range<usize>) -> usize {
        self.text[..span.start.min(self.text.len())].bytes().filter(|b| *b == b'\n').count() + 1
    }

    fn err(&self, span: &Range<usize>, what: &str, field: &str, reason: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.to_string(),
            line: self.line_of(span),
            what: what.to_string(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    /// Requires `value` finite and within `[lo, hi]`.
    fn range(
        &self,
        span: &Range<usize>,
        what: &str,
        field: &str,
        value: f64,
        lo: f64,
        hi: f64,
    ) -> Result<f64, ScenarioError> {
        if value.is_finite() && value >= lo && value <= hi {
            Ok(value)
        } else {
            Err(self.err(span, what, field, format!("must be in [{lo}, {hi}], is {value}")))
        }
    }

    fn time(
        &self,
        span: &Range<usize>,
        what: &str,
        field: &str,
        dt: &toml::value::Datetime,
    ) -> Result<UtcNanos, ScenarioError> {
        UtcNanos::parse_rfc3339(&dt.to_string()).map_err(|e| self.err(span, what, field, e.to_string()))
    }

    fn point(&self, span: &Range<usize>, what: &str, field: &str, p: &FilePoint) -> Result<Geodetic, ScenarioError> {
        let lat = self.range(span, what, &format!("{field}.lat_deg"), p.lat_deg, -90.0, 90.0)?;
        let lon = self.range(span, what, &format!("{field}.lon_deg"), p.lon_deg, -180.0, 180.0)?;
        let alt = self.range(span, what, &format!("{field}.alt_m"), p.alt_m, -500.0, 10_000.0)?;
        Ok(Geodetic::from_degrees(lat, lon, alt))
    }

    /// Ids name launches and sensors in every output record: non-empty, at most
    /// `MAX_ID_LEN` bytes, and unique across the file.
    fn unique_id(
        &self,
        span: &Range<usize>,
        what: &str,
        id: &str,
        seen: &mut HashSet<String>,
    ) -> Result<(), ScenarioError> {
        if id.is_empty() || id.len() > MAX_ID_LEN || !seen.insert(id.to_string()) {
            return Err(self.err(
                span,
                what,
                "id",
                format!("must be 1 to {MAX_ID_LEN} bytes and unique among launches and sensors"),
            ));
        }
        Ok(())
    }

    fn nation(&self, span: &Range<usize>, what: &str, code: &str) -> Result<Nation, ScenarioError> {
        Nation::parse(code).map_err(|e| self.err(span, what, "nation", e.to_string()))
    }
}

/// Parses and validates a scenario. `path` is only used in error messages.
pub fn parse(path: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let file: FileScenario =
        toml::from_str(text).map_err(|e| ScenarioError::Syntax { path: path.to_string(), message: e.to_string() })?;
    let c = Checker { path, text };
    let start = c.time(&file.start.span(), "scenario", "start", file.start.get_ref())?;
    let duration_s = match &file.duration_s {
        Some(d) => Some(c.range(&d.span(), "scenario", "duration_s", *d.get_ref(), 1.0, MAX_DURATION_S)?),
        None => None,
    };
    let truth_interval_s = match &file.truth_interval_s {
        Some(d) => c.range(&d.span(), "scenario", "truth_interval_s", *d.get_ref(), 0.01, 60.0)?,
        None => 1.0,
    };
    if file.launch.len() > MAX_LAUNCHES {
        return Err(c.err(&(0..0), "scenario", "launch", format!("at most {MAX_LAUNCHES} launches")));
    }
    if file.radar.len() + file.space_ir.len() > MAX_SENSORS {
        return Err(c.err(&(0..0), "scenario", "radar", format!("at most {MAX_SENSORS} sensors")));
    }
    let mut ids = HashSet::new();
    let mut launches = Vec::with_capacity(file.launch.len());
    for l in &file.launch {
        let span = l.span();
        let l = l.get_ref();
        let what = format!("launch {:?}", l.id);
        c.unique_id(&span, &what, &l.id, &mut ids)?;
        launches.push(parse_launch(&c, &span, &what, l, start, duration_s)?);
    }
    let mut radars = Vec::with_capacity(file.radar.len());
    for r in &file.radar {
        let span = r.span();
        let r = r.get_ref();
        let what = format!("radar {:?}", r.id);
        c.unique_id(&span, &what, &r.id, &mut ids)?;
        radars.push(parse_radar(&c, &span, &what, r)?);
    }
    let mut space_ir = Vec::with_capacity(file.space_ir.len());
    for s in &file.space_ir {
        let span = s.span();
        let s = s.get_ref();
        let what = format!("space_ir {:?}", s.id);
        c.unique_id(&span, &what, &s.id, &mut ids)?;
        space_ir.push(parse_space_ir(&c, &span, &what, s, start)?);
    }
    let atmosphere = match &file.atmosphere {
        Some(a) => Atmosphere {
            density_sd: c.range(&a.span(), "atmosphere", "density_sd", a.get_ref().density_sd, 0.0, MAX_DENSITY_SD)?,
            layer_sd: c.range(&a.span(), "atmosphere", "layer_sd", a.get_ref().layer_sd, 0.0, MAX_LAYER_SD)?,
        },
        None => Atmosphere::default(),
    };
    Ok(Scenario {
        name: file.name,
        seed: file.seed,
        start,
        duration_s,
        truth_interval_s,
        launches,
        radars,
        space_ir,
        atmosphere,
    })
}

fn parse_launch(
    c: &Checker,
    span: &Range<usize>,
    what: &str,
    l: &FileLaunch,
    start: UtcNanos,
    duration_s: Option<f64>,
) -> Result<LaunchPlan, ScenarioError> {
    let site = c.point(span, what, "site", &l.site)?;
    let time = c.time(span, what, "time", &l.time)?;
    let offset = time.secs_since(start);
    let horizon = duration_s.unwrap_or(MAX_DURATION_S);
    if !(0.0..=horizon).contains(&offset) {
        return Err(c.err(
            span,
            what,
            "time",
            format!("must fall within the scenario (start + {horizon} s), is start + {offset} s"),
        ));
    }
    let (class, vehicle) = match (&l.class, &l.vehicle) {
        (Some(name), None) => match missile_class(name) {
            Some(v) => (name.clone(), v),
            None => {
                return Err(c.err(
                    span,
                    what,
                    "class",
                    format!("unknown class {name:?}; known: {}", MISSILE_CLASSES.join(", ")),
                ))
            }
        },
        (None, Some(v)) => ("custom".to_string(), parse_vehicle(c, span, what, v, &l.id)?),
        _ => return Err(c.err(span, what, "class", "give exactly one of `class` or a `vehicle` table")),
    };
    let aim = match (l.azimuth_deg, &l.aim) {
        (Some(az), None) => {
            Aim::Azimuth { azimuth_rad: c.range(span, what, "azimuth_deg", az, 0.0, 360.0)?.to_radians() }
        }
        (None, Some(p)) => {
            let target = c.point(span, what, "aim", p)?;
            let d = geodesy::geodesic_inverse(site.lat_rad, site.lon_rad, target.lat_rad, target.lon_rad).distance_m;
            if d < 10e3 {
                return Err(c.err(
                    span,
                    what,
                    "aim",
                    format!("is {d:.0} m from the site; a ballistic shot needs at least 10 km"),
                ));
            }
            Aim::Point { target }
        }
        _ => return Err(c.err(span, what, "azimuth_deg", "give exactly one of `azimuth_deg` or `aim`")),
    };
    // The longest ballistic range is half the Earth's circumference.
    let max_range_km = std::f64::consts::PI * Wgs84::A_M / 1e3;
    let range_m = match l.range_km {
        Some(r) => Some(c.range(span, what, "range_km", r, 10.0, max_range_km)? * 1e3),
        None => match &aim {
            Aim::Point { target } => {
                Some(geodesy::geodesic_inverse(site.lat_rad, site.lon_rad, target.lat_rad, target.lon_rad).distance_m)
            }
            Aim::Azimuth { .. } => None,
        },
    };
    if l.range_km.is_some() && matches!(aim, Aim::Point { .. }) {
        return Err(c.err(span, what, "range_km", "an aim point sets the range; give one or the other"));
    }
    let apogee_m = match l.apogee_km {
        Some(a) => Some(c.range(span, what, "apogee_km", a, 20.0, 40_000.0)? * 1e3),
        None => None,
    };
    let only_for = |field: &str, present: bool, shape: &str| -> Result<(), ScenarioError> {
        if present {
            Err(c.err(span, what, field, format!("does not apply to shape {shape:?}")))
        } else {
            Ok(())
        }
    };
    let shape = match l.shape.as_str() {
        "minimum-energy" => {
            only_for("apogee_km", apogee_m.is_some(), &l.shape)?;
            only_for("kick_deg", l.kick_deg.is_some(), &l.shape)?;
            only_for("cutoff_s", l.cutoff_s.is_some(), &l.shape)?;
            Shape::MinimumEnergy { range_m }
        }
        "lofted" => {
            only_for("kick_deg", l.kick_deg.is_some(), &l.shape)?;
            only_for("cutoff_s", l.cutoff_s.is_some(), &l.shape)?;
            if range_m.is_none() && apogee_m.is_none() {
                return Err(c.err(span, what, "apogee_km", "a lofted launch needs `range_km`, `aim` or `apogee_km`"));
            }
            Shape::Lofted { range_m, apogee_m }
        }
        "depressed" => {
            only_for("apogee_km", apogee_m.is_some(), &l.shape)?;
            only_for("kick_deg", l.kick_deg.is_some(), &l.shape)?;
            only_for("cutoff_s", l.cutoff_s.is_some(), &l.shape)?;
            match range_m {
                Some(range_m) => Shape::Depressed { range_m },
                None => return Err(c.err(span, what, "range_km", "a depressed launch needs `range_km` or `aim`")),
            }
        }
        "explicit" => {
            only_for("apogee_km", apogee_m.is_some(), &l.shape)?;
            if matches!(aim, Aim::Point { .. }) || l.range_km.is_some() {
                return Err(c.err(
                    span,
                    what,
                    "shape",
                    "an explicit programme flies where it flies: give `azimuth_deg`, not a range or aim",
                ));
            }
            let kick = c.range(span, what, "kick_deg", l.kick_deg.unwrap_or(f64::NAN), 0.0, 89.0)?;
            let cutoff_s = match l.cutoff_s {
                Some(s) => Some(c.range(span, what, "cutoff_s", s, 1.0, vehicle.total_burn_s())?),
                None => None,
            };
            Shape::Explicit { kick_rad: kick.to_radians(), cutoff_s }
        }
        other => {
            return Err(c.err(
                span,
                what,
                "shape",
                format!("unknown shape {other:?}; known: minimum-energy, lofted, depressed, explicit"),
            ))
        }
    };
    Ok(LaunchPlan { id: l.id.clone(), class, vehicle, site, time, aim, shape })
}

fn parse_vehicle(
    c: &Checker,
    span: &Range<usize>,
    what: &str,
    v: &FileVehicle,
    id: &str,
) -> Result<Vehicle, ScenarioError> {
    let mut stages = Vec::with_capacity(v.stages.len());
    for (i, s) in v.stages.iter().enumerate() {
        let field = |f: &str| format!("vehicle.stages[{i}].{f}");
        let isp_s = match (s.isp_s, s.thrust_n) {
            (Some(isp), None) => isp,
            (None, Some(thrust)) => {
                let thrust = c.range(span, what, &field("thrust_n"), thrust, 1.0, 1e8)?;
                thrust * s.burn_time_s / (s.propellant_kg * flight::atmosphere::G0_M_S2)
            }
            _ => return Err(c.err(span, what, &field("isp_s"), "give exactly one of `isp_s` or `thrust_n`")),
        };
        stages.push(Stage { propellant_kg: s.propellant_kg, dry_kg: s.dry_kg, isp_s, burn_time_s: s.burn_time_s });
    }
    let vehicle = Vehicle {
        name: id.to_string(),
        stages,
        payload_kg: v.payload_kg,
        boost_cd_area_m2: v.boost_cd_area_m2,
        reentry_ballistic_coeff_kg_m2: v.reentry_ballistic_coeff_kg_m2,
    };
    vehicle.validate().map_err(|e| c.err(span, what, "vehicle", e.to_string()))?;
    Ok(vehicle)
}

fn parse_radar(c: &Checker, span: &Range<usize>, what: &str, r: &FileRadar) -> Result<Radar, ScenarioError> {
    let min_el = c.range(span, what, "min_elevation_deg", r.min_elevation_deg, -5.0, 89.0)?;
    let max_el = c.range(span, what, "max_elevation_deg", r.max_elevation_deg, min_el, 90.0)?;
    Ok(Radar {
        id: r.id.clone(),
        nation: c.nation(span, what, &r.nation)?,
        site: c.point(span, what, "site", &r.site)?,
        boresight_az_rad: c.range(span, what, "boresight_az_deg", r.boresight_az_deg, 0.0, 360.0)?.to_radians(),
        half_width_rad: c.range(span, what, "sector_half_width_deg", r.sector_half_width_deg, 1.0, 180.0)?.to_radians(),
        min_el_rad: min_el.to_radians(),
        max_el_rad: max_el.to_radians(),
        max_range_m: c.range(span, what, "max_range_km", r.max_range_km, 1.0, 10_000.0)? * 1e3,
        update_interval_s: c.range(
            span,
            what,
            "update_interval_s",
            r.update_interval_s,
            MIN_UPDATE_INTERVAL_S,
            600.0,
        )?,
        detection_probability: c.range(span, what, "detection_probability", r.detection_probability, 0.0, 1.0)?,
        sigma_range_m: c.range(span, what, "sigma_range_m", r.sigma_range_m, 0.01, 10_000.0)?,
        sigma_az_rad: c.range(span, what, "sigma_az_mrad", r.sigma_az_mrad, 0.001, 100.0)? * 1e-3,
        sigma_el_rad: c.range(span, what, "sigma_el_mrad", r.sigma_el_mrad, 0.001, 100.0)? * 1e-3,
        sigma_range_rate_mps: match r.sigma_range_rate_mps {
            Some(s) => Some(c.range(span, what, "sigma_range_rate_mps", s, 0.001, 1_000.0)?),
            None => None,
        },
        false_alarms_per_scan: c.range(
            span,
            what,
            "false_alarms_per_scan",
            r.false_alarms_per_scan,
            0.0,
            MAX_FALSE_ALARMS_PER_SCAN,
        )?,
    })
}

fn parse_space_ir(
    c: &Checker,
    span: &Range<usize>,
    what: &str,
    s: &FileSpaceIr,
    start: UtcNanos,
) -> Result<SpaceIr, ScenarioError> {
    let orbit = match s.orbit {
        FileOrbit::Geo { lon_deg } => {
            Orbit::Geostationary { lon_rad: c.range(span, what, "orbit.lon_deg", lon_deg, -180.0, 180.0)?.to_radians() }
        }
        FileOrbit::Keplerian {
            perigee_alt_km,
            apogee_alt_km,
            inclination_deg,
            raan_deg,
            arg_perigee_deg,
            mean_anomaly_deg,
        } => {
            let perigee =
                c.range(span, what, "orbit.perigee_alt_km", perigee_alt_km, 150.0, 100_000.0)? * 1e3 + Wgs84::A_M;
            let apogee = c.range(span, what, "orbit.apogee_alt_km", apogee_alt_km, perigee_alt_km, 100_000.0)? * 1e3
                + Wgs84::A_M;
            Orbit::Keplerian {
                semi_major_m: 0.5 * (perigee + apogee),
                eccentricity: (apogee - perigee) / (apogee + perigee),
                inclination_rad: c
                    .range(span, what, "orbit.inclination_deg", inclination_deg, 0.0, 180.0)?
                    .to_radians(),
                raan_rad: c.range(span, what, "orbit.raan_deg", raan_deg, 0.0, 360.0)?.to_radians(),
                arg_perigee_rad: c
                    .range(span, what, "orbit.arg_perigee_deg", arg_perigee_deg, 0.0, 360.0)?
                    .to_radians(),
                mean_anomaly_rad: c
                    .range(span, what, "orbit.mean_anomaly_deg", mean_anomaly_deg, 0.0, 360.0)?
                    .to_radians(),
                epoch: start,
            }
        }
    };
    Ok(SpaceIr {
        id: s.id.clone(),
        nation: c.nation(span, what, &s.nation)?,
        orbit,
        revisit_interval_s: c.range(
            span,
            what,
            "revisit_interval_s",
            s.revisit_interval_s,
            MIN_REVISIT_INTERVAL_S,
            600.0,
        )?,
        detection_probability: c.range(span, what, "detection_probability", s.detection_probability, 0.0, 1.0)?,
        sigma_los_rad: c.range(span, what, "sigma_los_urad", s.sigma_los_urad, 0.01, 10_000.0)? * 1e-6,
        min_target_alt_m: c.range(span, what, "min_target_alt_km", s.min_target_alt_km, 0.0, 100.0)? * 1e3,
    })
}
