//! The JSON, GeoJSON and KML forms of the node's products (docs/api.md and docs/tracks.md).
//! This is a format boundary: the engine's types stay free of serialization.

use alert::{Alert, AlertChange, Change, Level, Prediction, CHI2_2_50, CHI2_2_95};
use fusion::{Counters, TrackView};
use serde_json::{json, Value};

/// A confirmed track as JSON (the schema of docs/tracks.md).
pub fn track_json(t: &TrackView) -> Value {
    let p = &t.cov;
    let impact = t.impact.as_ref().map(|(at, i)| {
        let e = i.ellipse(fusion::predict::ELLIPSE_SCALE_95);
        json!({
            "made_at": at.to_string(),
            "lat_deg": i.point.lat_deg(),
            "lon_deg": i.point.lon_deg(),
            "time": at.add_secs_f64(i.time_to_impact_s).to_string(),
            "time_sd_s": i.time_to_impact_sd_s,
            "ellipse95_semi_major_m": e.semi_major_m,
            "ellipse95_semi_minor_m": e.semi_minor_m,
            "ellipse95_major_azimuth_deg": e.major_azimuth_rad.to_degrees(),
            "during_boost": i.during_boost,
            "apogee_alt_m": i.apogee_alt_m,
        })
    });
    let launch = t.launch.as_ref().map(|(at, l)| {
        json!({
            "lat_deg": l.point.lat_deg(),
            "lon_deg": l.point.lon_deg(),
            "time": at.add_secs_f64(-l.seconds_before).to_string(),
            "time_sd_s": l.seconds_before_sd,
            "sd_m": l.cov_en_m2.trace().sqrt(),
        })
    });
    let pos = geodesy::ecef_to_geodetic(&geodesy::Vector3::new(t.state[0], t.state[1], t.state[2]));
    json!({
        "time": t.time.to_string(),
        "track": t.id.0,
        "pos_ecef_m": [t.state[0], t.state[1], t.state[2]],
        "vel_ecef_mps": [t.state[3], t.state[4], t.state[5]],
        "lat_deg": pos.lat_deg(),
        "lon_deg": pos.lon_deg(),
        "alt_m": pos.alt_m,
        "pos_sd_m": (p[(0, 0)] + p[(1, 1)] + p[(2, 2)]).sqrt(),
        "vel_sd_mps": (p[(3, 3)] + p[(4, 4)] + p[(5, 5)]).sqrt(),
        "phase": t.phase.as_str(),
        "boost_probability": t.boost_probability,
        "nations": t.nations.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
        "burnout_time": t.burnout_time.map(|b| b.to_string()),
        "impact": impact,
        "launch": launch,
        "ballistic_coeff": t.ballistic_coeff.map(|b| json!({"kg_m2": b.kg_m2, "ln_sd": b.ln_sd})),
    })
}

/// A track's launch event, once it has a launch estimate.
pub fn launch_json(t: &TrackView) -> Option<Value> {
    let (at, l) = t.launch.as_ref()?;
    Some(json!({
        "track": t.id.0,
        "lat_deg": l.point.lat_deg(),
        "lon_deg": l.point.lon_deg(),
        "time": at.add_secs_f64(-l.seconds_before).to_string(),
        "time_sd_s": l.seconds_before_sd,
        "sd_m": l.cov_en_m2.trace().sqrt(),
        "first_seen": t.first_time.to_string(),
    }))
}

/// An operator's acknowledgement of an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub operator: String,
    pub time: vocab::UtcNanos,
    /// The level acknowledged: an alert that escalates past it needs acknowledging again.
    pub level: Level,
    pub note: String,
}

/// An alert as JSON, with the nations whose sensors fed its track and its acknowledgement.
pub fn alert_json(a: &Alert, nations: &[String], ack: Option<&Ack>) -> Value {
    let ack = ack.map(|k| {
        json!({"by": k.operator, "at": k.time.to_string(), "level": k.level.as_str(), "note": k.note,
               "current": k.level >= a.level})
    });
    json!({
        "nations": nations,
        "acknowledged": ack,
        "id": a.id,
        "track": a.track,
        "area": a.area,
        "level": a.level.as_str(),
        "confidence": a.confidence,
        "impact_time": a.impact_time.to_string(),
        "time_to_impact_s": a.impact_time.secs_since(journal::wall_clock()),
        "time_to_impact_sd_s": a.time_to_impact_sd_s,
        "impact_lat_deg": a.impact_lat_deg,
        "impact_lon_deg": a.impact_lon_deg,
        "raised_at": a.raised_at.to_string(),
        "updated_at": a.updated_at.to_string(),
    })
}

/// An alert change as the body of an ALERT record.
pub fn alert_wire(c: &AlertChange) -> wire::Alert {
    let a = &c.alert;
    wire::Alert {
        alert_id: a.id.clone(),
        state: match c.change {
            Change::Raised => wire::AlertState::Raised,
            Change::Updated => wire::AlertState::Updated,
            Change::Withdrawn => wire::AlertState::Withdrawn,
        } as i32,
        level: match a.level {
            Level::Watch => wire::AlertLevel::Watch,
            Level::Warning => wire::AlertLevel::Warning,
            Level::Impact => wire::AlertLevel::Impact,
        } as i32,
        area: a.area.clone(),
        track: a.track,
        predicted_impact_unix_ns: a.impact_time.as_nanos(),
        time_to_impact_s: a.impact_time.secs_since(a.updated_at),
        time_to_impact_sd_s: a.time_to_impact_sd_s,
        confidence: a.confidence,
        impact_lat_deg: a.impact_lat_deg,
        impact_lon_deg: a.impact_lon_deg,
    }
}

pub fn counters_json(c: &Counters) -> Value {
    json!({
        "measurements": c.measurements,
        "late_set_aside": c.late_set_aside,
        "updates": c.updates,
        "tracks_initiated": c.tracks_initiated,
        "tracks_confirmed": c.tracks_confirmed,
        "tracks_deleted": c.tracks_deleted,
        "impact_predictions": c.impact_predictions,
        "impact_predictions_deferred": c.impact_predictions_deferred,
        "pair_candidates_capped": c.pair_candidates_capped,
    })
}

/// A wire measurement as JSON (the log query's view; the field names of the .proto file).
pub fn measurement_json(w: &wire::Measurement) -> Value {
    use wire::measurement::Obs;
    let obs = match &w.obs {
        Some(Obs::Radar(r)) => json!({"radar": {
            "lat_deg": r.lat_deg, "lon_deg": r.lon_deg, "alt_m": r.alt_m, "range_m": r.range_m,
            "az_rad": r.az_rad, "el_rad": r.el_rad, "range_rate_mps": r.range_rate_mps,
            "sigma_range_m": r.sigma_range_m, "sigma_az_rad": r.sigma_az_rad, "sigma_el_rad": r.sigma_el_rad,
            "sigma_range_rate_mps": r.sigma_range_rate_mps}}),
        Some(Obs::SpaceIr(s)) => json!({"space_ir": {
            "sat_pos_ecef_m": [s.sat_x_m, s.sat_y_m, s.sat_z_m], "los_alpha_rad": s.los_alpha_rad,
            "los_beta_rad": s.los_beta_rad, "sigma_los_rad": s.sigma_los_rad}}),
        Some(Obs::Track(t)) => json!({"track": {
            "track_label": t.track_label, "pos_ecef_m": t.pos_ecef_m, "vel_ecef_mps": t.vel_ecef_mps,
            "covariance": t.covariance}}),
        None => Value::Null,
    };
    json!({
        "time": vocab::UtcNanos::from_nanos(w.time_unix_ns).to_string(),
        "sensor": w.sensor,
        "nation": w.nation,
        "obs": obs,
    })
}

/// A stored record as JSON: envelope, hash and decoded body.
pub fn record_json(bytes: &[u8]) -> Value {
    use prost::Message;
    let digest = ledger::record_digest(bytes);
    let Ok(r) = wire::Record::decode(bytes) else {
        return json!({"digest": hex::encode(digest), "error": "undecodable record"});
    };
    let hash = hex::encode(ledger::link_hash(&r.prev_hash, &r.releasable_to, &digest));
    let kind = wire::RecordKind::try_from(r.kind).unwrap_or(wire::RecordKind::Unspecified);
    let body = match kind {
        wire::RecordKind::MeasurementBatch => wire::MeasurementBatch::decode(r.body.as_slice())
            .map(|b| json!({"measurements": b.measurements.iter().map(measurement_json).collect::<Vec<_>>()}))
            .unwrap_or(Value::Null),
        wire::RecordKind::AlertAck => wire::AlertAck::decode(r.body.as_slice())
            .map(|a| {
                json!({"alert_id": a.alert_id, "operator": a.operator, "note": a.note,
                       "time": vocab::UtcNanos::from_nanos(a.time_unix_ns).to_string()})
            })
            .unwrap_or(Value::Null),
        wire::RecordKind::Alert => wire::Alert::decode(r.body.as_slice())
            .map(|a| {
                json!({
                    "alert_id": a.alert_id, "state": a.state().as_str_name(), "level": a.level().as_str_name(),
                    "area": a.area, "track": a.track,
                    "predicted_impact": vocab::UtcNanos::from_nanos(a.predicted_impact_unix_ns).to_string(),
                    "time_to_impact_s": a.time_to_impact_s, "time_to_impact_sd_s": a.time_to_impact_sd_s,
                    "confidence": a.confidence, "impact_lat_deg": a.impact_lat_deg, "impact_lon_deg": a.impact_lon_deg,
                })
            })
            .unwrap_or(Value::Null),
        wire::RecordKind::CyberBundle => wire::CyberBundle::decode(r.body.as_slice())
            .map(|b| json!({"analyst": b.analyst, "objects": b.objects.len(), "redactions": b.redactions}))
            .unwrap_or(Value::Null),
        _ => json!({"bytes": r.body.len()}),
    };
    json!({
        "origin": r.origin,
        "seq": r.seq,
        "time": vocab::UtcNanos::from_nanos(r.origin_time_unix_ns).to_string(),
        "kind": kind.as_str_name(),
        "releasable_to": r.releasable_to,
        "prev_hash": hex::encode(&r.prev_hash),
        "hash": hash,
        "digest": hex::encode(digest),
        "body": body,
    })
}

/// A track's impact prediction as the alert book takes it.
pub fn impact_prediction(t: &TrackView) -> Option<Prediction> {
    let (at, i) = t.impact.as_ref()?;
    Some(Prediction {
        lat_deg: i.point.lat_deg(),
        lon_deg: i.point.lon_deg(),
        cov_en_m2: i.cov_en_m2,
        impact_time: at.add_secs_f64(i.time_to_impact_s),
        time_to_impact_sd_s: i.time_to_impact_sd_s,
    })
}

const ELLIPSE_POINTS: usize = 72;

/// A track as a GeoJSON FeatureCollection: its position, launch point, impact point and the
/// 50% and 95% impact ellipses.
pub fn track_geojson(t: &TrackView) -> Value {
    let v = track_json(t);
    let mut features = vec![json!({
        "type": "Feature",
        "properties": {"kind": "track", "track": t.id.0, "time": v["time"], "phase": v["phase"], "alt_m": v["alt_m"]},
        "geometry": {"type": "Point", "coordinates": [v["lon_deg"], v["lat_deg"]]},
    })];
    if let Some(l) = v.get("launch").filter(|l| !l.is_null()) {
        features.push(json!({
            "type": "Feature",
            "properties": {"kind": "launch", "track": t.id.0, "time": l["time"], "sd_m": l["sd_m"]},
            "geometry": {"type": "Point", "coordinates": [l["lon_deg"], l["lat_deg"]]},
        }));
    }
    if let Some(p) = impact_prediction(t) {
        features.push(json!({
            "type": "Feature",
            "properties": {"kind": "impact", "track": t.id.0, "time": p.impact_time.to_string()},
            "geometry": {"type": "Point", "coordinates": [p.lon_deg, p.lat_deg]},
        }));
        for (name, chi2) in [("ellipse95", CHI2_2_95), ("ellipse50", CHI2_2_50)] {
            let ring: Vec<[f64; 2]> =
                alert::ellipse_ring(&p, chi2, ELLIPSE_POINTS).into_iter().map(|(lon, lat)| [lon, lat]).collect();
            features.push(json!({
                "type": "Feature",
                "properties": {"kind": name, "track": t.id.0},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }));
        }
    }
    json!({"type": "FeatureCollection", "features": features})
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A track as KML: the same features as the GeoJSON export.
pub fn track_kml(t: &TrackView) -> String {
    let v = track_json(t);
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<kml xmlns=\"http://www.opengis.net/kml/2.2\"><Document>\n",
    );
    out += &format!("<name>{}</name>\n", xml_escape(&format!("trilink track {}", t.id.0)));
    let point = |name: &str, lon: &Value, lat: &Value, alt: f64| {
        format!(
            "<Placemark><name>{}</name><Point><altitudeMode>absolute</altitudeMode><coordinates>{},{},{}</coordinates></Point></Placemark>\n",
            xml_escape(name),
            lon,
            lat,
            alt
        )
    };
    out += &point(
        &format!("track {} ({})", t.id.0, v["phase"].as_str().unwrap_or("")),
        &v["lon_deg"],
        &v["lat_deg"],
        v["alt_m"].as_f64().unwrap_or(0.0),
    );
    if let Some(l) = v.get("launch").filter(|l| !l.is_null()) {
        out += &point("launch point", &l["lon_deg"], &l["lat_deg"], 0.0);
    }
    if let Some(p) = impact_prediction(t) {
        out += &point(&format!("impact {}", p.impact_time), &json!(p.lon_deg), &json!(p.lat_deg), 0.0);
        for (name, chi2) in [("95% impact ellipse", CHI2_2_95), ("50% impact ellipse", CHI2_2_50)] {
            let coords: Vec<String> = alert::ellipse_ring(&p, chi2, ELLIPSE_POINTS)
                .into_iter()
                .map(|(lon, lat)| format!("{lon},{lat},0"))
                .collect();
            out += &format!(
                "<Placemark><name>{name}</name><Polygon><outerBoundaryIs><LinearRing><coordinates>{}</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>\n",
                coords.join(" ")
            );
        }
    }
    out += "</Document></kml>\n";
    out
}
