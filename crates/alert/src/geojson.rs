//! Defended areas from GeoJSON: a FeatureCollection, a Feature or a bare geometry, each
//! Polygon or MultiPolygon in longitude/latitude degrees (RFC 7946). Each feature becomes an
//! area named by its `name` property (or the name the caller gives).

use crate::{Area, MAX_AREA_VERTICES};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AreaError {
    #[error("failed to parse GeoJSON: {0}")]
    Json(String),
    #[error("failed to read area {area:?}: {why}")]
    Invalid { area: String, why: String },
}

fn invalid(area: &str, why: impl Into<String>) -> AreaError {
    AreaError::Invalid { area: area.to_string(), why: why.into() }
}

fn ring(area: &str, v: &Value) -> Result<Vec<(f64, f64)>, AreaError> {
    let points = v.as_array().ok_or_else(|| invalid(area, "a ring is not an array of positions"))?;
    let mut out = Vec::with_capacity(points.len());
    for p in points {
        let (lon, lat) = match p.as_array().map(|a| a.as_slice()) {
            Some([lon, lat, ..]) => (lon.as_f64(), lat.as_f64()),
            _ => (None, None),
        };
        match (lon, lat) {
            (Some(lon), Some(lat)) if lon.abs() <= 180.0 && lat.abs() <= 90.0 => out.push((lon, lat)),
            _ => return Err(invalid(area, format!("position {p} is not [lon, lat] in degrees"))),
        }
    }
    if out.len() > 1 && out.first() == out.last() {
        out.pop();
    }
    if out.len() < 3 {
        return Err(invalid(area, "a ring needs at least three distinct positions"));
    }
    Ok(out)
}

fn polygon(area: &str, v: &Value) -> Result<Vec<Vec<(f64, f64)>>, AreaError> {
    let rings = v.as_array().ok_or_else(|| invalid(area, "a polygon is not an array of rings"))?;
    if rings.is_empty() {
        return Err(invalid(area, "a polygon has no rings"));
    }
    rings.iter().map(|r| ring(area, r)).collect()
}

fn geometry(name: &str, g: &Value) -> Result<Area, AreaError> {
    let coords = g.get("coordinates").ok_or_else(|| invalid(name, "geometry has no coordinates"))?;
    let polygons = match g.get("type").and_then(Value::as_str) {
        Some("Polygon") => vec![polygon(name, coords)?],
        Some("MultiPolygon") => coords
            .as_array()
            .ok_or_else(|| invalid(name, "MultiPolygon coordinates are not an array"))?
            .iter()
            .map(|p| polygon(name, p))
            .collect::<Result<_, _>>()?,
        other => return Err(invalid(name, format!("geometry type {other:?} is not Polygon or MultiPolygon"))),
    };
    let vertices: usize = polygons.iter().flatten().map(Vec::len).sum();
    if vertices > MAX_AREA_VERTICES {
        return Err(invalid(name, format!("{vertices} vertices exceed the limit of {MAX_AREA_VERTICES}")));
    }
    Ok(Area::new(name.to_string(), polygons))
}

/// Parses the areas in one GeoJSON document. `default_name` names a bare geometry, or features
/// without a `name` property.
pub fn parse_areas(text: &str, default_name: &str) -> Result<Vec<Area>, AreaError> {
    let v: Value = serde_json::from_str(text).map_err(|e| AreaError::Json(e.to_string()))?;
    let feature = |f: &Value| -> Result<Area, AreaError> {
        let name = f.pointer("/properties/name").and_then(Value::as_str).unwrap_or(default_name);
        let g = f.get("geometry").ok_or_else(|| invalid(name, "feature has no geometry"))?;
        geometry(name, g)
    };
    match v.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => v
            .get("features")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid(default_name, "FeatureCollection has no features array"))?
            .iter()
            .map(feature)
            .collect(),
        Some("Feature") => Ok(vec![feature(&v)?]),
        Some(_) => Ok(vec![geometry(default_name, &v)?]),
        None => Err(invalid(default_name, "not a GeoJSON object (no \"type\")")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_areas_parse() {
        for (file, name) in [("japan", "Japan"), ("south-korea", "South Korea"), ("guam", "Guam"), ("hawaii", "Hawaii")]
        {
            let path = format!("{}/../../config/areas/{file}.geojson", env!("CARGO_MANIFEST_DIR"));
            let areas = parse_areas(&std::fs::read_to_string(&path).unwrap(), file).unwrap();
            assert_eq!(areas[0].name, name);
        }
    }

    #[test]
    fn bad_areas_say_what_is_wrong() {
        let cases = [
            ("{", "failed to parse GeoJSON"),
            ("[]", "no \"type\""),
            (r#"{"type":"Point","coordinates":[1,2]}"#, "not Polygon"),
            (r#"{"type":"Polygon","coordinates":[[[0,0],[1,0]]]}"#, "three distinct"),
            (r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,95]]]}"#, "[lon, lat]"),
            (r#"{"type":"Polygon","coordinates":[]}"#, "no rings"),
            (r#"{"type":"FeatureCollection"}"#, "no features"),
        ];
        for (text, want) in cases {
            let err = parse_areas(text, "x").unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
