//! Missiles as data: staged rockets with a re-entry vehicle, and the bundled missile classes.

use crate::atmosphere::G0_M_S2;

/// One rocket stage. Thrust is constant over the burn: `F = Isp · g0 · ṁ`, `ṁ = propellant / burn`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub propellant_kg: f64,
    /// Structure and engine, dropped at the stage's burnout.
    pub dry_kg: f64,
    /// Effective specific impulse over the burn (between sea-level and vacuum values).
    pub isp_s: f64,
    pub burn_time_s: f64,
}

impl Stage {
    pub fn mass_flow_kg_s(&self) -> f64 {
        self.propellant_kg / self.burn_time_s
    }

    pub fn thrust_n(&self) -> f64 {
        self.isp_s * G0_M_S2 * self.mass_flow_kg_s()
    }
}

/// A ballistic missile: stages fired in order, then a payload that flies on alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Vehicle {
    pub name: String,
    pub stages: Vec<Stage>,
    /// Mass of what flies on after the last stage: the re-entry vehicle (or, for a missile whose
    /// warhead does not separate, still only the mass that matters for the drag coefficient below).
    pub payload_kg: f64,
    /// Drag coefficient × reference area of the stack during boost.
    pub boost_cd_area_m2: f64,
    /// Ballistic coefficient m / (Cd·A) of the object that re-enters.
    pub reentry_ballistic_coeff_kg_m2: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VehicleError {
    #[error("failed to accept vehicle {name:?}: {reason}")]
    Invalid { name: String, reason: String },
}

/// Limits on a vehicle definition, far beyond any real missile, to catch unit mistakes.
const MAX_STAGES: usize = 5;
const MAX_MASS_KG: f64 = 1.0e6;
const MAX_BURN_TIME_S: f64 = 1_000.0;
const MAX_ISP_S: f64 = 500.0;

impl Vehicle {
    /// Checks that every figure is physical; a vehicle that passes can be flown.
    pub fn validate(&self) -> Result<(), VehicleError> {
        let fail = |reason: String| Err(VehicleError::Invalid { name: self.name.clone(), reason });
        if self.stages.is_empty() || self.stages.len() > MAX_STAGES {
            return fail(format!("needs 1 to {MAX_STAGES} stages, has {}", self.stages.len()));
        }
        for (i, s) in self.stages.iter().enumerate() {
            let n = i + 1;
            if !(s.propellant_kg > 0.0 && s.propellant_kg < MAX_MASS_KG) {
                return fail(format!("stage {n}: propellant_kg must be in (0, {MAX_MASS_KG}), is {}", s.propellant_kg));
            }
            if !(s.dry_kg > 0.0 && s.dry_kg < MAX_MASS_KG) {
                return fail(format!("stage {n}: dry_kg must be in (0, {MAX_MASS_KG}), is {}", s.dry_kg));
            }
            if !(s.isp_s > 50.0 && s.isp_s <= MAX_ISP_S) {
                return fail(format!("stage {n}: isp_s must be in (50, {MAX_ISP_S}], is {}", s.isp_s));
            }
            if !(s.burn_time_s > 0.5 && s.burn_time_s <= MAX_BURN_TIME_S) {
                return fail(format!(
                    "stage {n}: burn_time_s must be in (0.5, {MAX_BURN_TIME_S}], is {}",
                    s.burn_time_s
                ));
            }
        }
        if !(self.payload_kg > 0.0 && self.payload_kg < MAX_MASS_KG) {
            return fail(format!("payload_kg must be in (0, {MAX_MASS_KG}), is {}", self.payload_kg));
        }
        if !(self.boost_cd_area_m2 >= 0.0 && self.boost_cd_area_m2 < 100.0) {
            return fail(format!("boost_cd_area_m2 must be in [0, 100), is {}", self.boost_cd_area_m2));
        }
        if !(self.reentry_ballistic_coeff_kg_m2 > 10.0 && self.reentry_ballistic_coeff_kg_m2 < 1e6) {
            return fail(format!(
                "reentry_ballistic_coeff_kg_m2 must be in (10, 1e6), is {}",
                self.reentry_ballistic_coeff_kg_m2
            ));
        }
        let first = &self.stages[0];
        let weight_n = self.launch_mass_kg() * G0_M_S2;
        if first.thrust_n() <= weight_n {
            return fail(format!(
                "first stage thrust {:.0} N does not lift the launch weight {:.0} N",
                first.thrust_n(),
                weight_n
            ));
        }
        Ok(())
    }

    pub fn launch_mass_kg(&self) -> f64 {
        self.payload_kg + self.stages.iter().map(|s| s.propellant_kg + s.dry_kg).sum::<f64>()
    }

    pub fn total_burn_s(&self) -> f64 {
        self.stages.iter().map(|s| s.burn_time_s).sum()
    }

    /// Ideal (Tsiolkovsky) velocity change of the whole stack, ignoring gravity and drag.
    pub fn ideal_delta_v_mps(&self) -> f64 {
        let mut above = self.payload_kg;
        let mut dv = 0.0;
        for s in self.stages.iter().rev() {
            let full = above + s.dry_kg + s.propellant_kg;
            dv += s.isp_s * G0_M_S2 * (full / (full - s.propellant_kg)).ln();
            above = full;
        }
        dv
    }
}

/// The bundled missile classes. Figures are public, textbook-level estimates, rounded; where
/// the open literature gives no single value the effective Isp was chosen within the range the
/// sources give so that the class reproduces its reference flights (see `tests/it/reference.rs`).
///
/// Sources: CSIS Missile Defense Project, *Missile Threat* fact sheets (Scud-B, Nodong,
/// Hwasong-12, Hwasong-15); G. Forden, "A Technical Assessment of North Korea's Scud" and
/// D. Wright (Union of Concerned Scientists) analyses of the 2017 Hwasong-12/-14/-15 tests;
/// J. Schilling, 38 North, on the Hwasong-12 and -15 engines. Re-entry ballistic coefficients
/// are typical textbook values: a few thousand kg/m² for a tumbling Scud body, about 10,000
/// to 20,000 kg/m² for conical re-entry vehicles (Zarchan, *Tactical and Strategic Missile
/// Guidance*, uses 500 to 3,000 lb/ft², i.e. 2,400 to 14,600 kg/m², in its examples).
pub fn missile_class(name: &str) -> Option<Vehicle> {
    let class = |stages: Vec<Stage>, payload_kg, boost_cd_area_m2, beta| Vehicle {
        name: name.to_string(),
        stages,
        payload_kg,
        boost_cd_area_m2,
        reentry_ballistic_coeff_kg_m2: beta,
    };
    let stage = |propellant_kg, dry_kg, isp_s, burn_time_s| Stage { propellant_kg, dry_kg, isp_s, burn_time_s };
    Some(match name {
        // Scud-B class: 5.9 t, 0.88 m diameter, ~62 s burn, ~300 km; the warhead does not
        // separate, so the whole tumbling body re-enters with a low ballistic coefficient.
        "srbm" => class(vec![stage(3_770.0, 1_105.0, 226.0, 62.0)], 985.0, 0.18, 3_000.0),
        // Nodong (Hwasong-7) class: 16 t, 1.36 m diameter, ~110 s burn, ~1,300 km, separating RV.
        "mrbm" => class(vec![stage(12_900.0, 2_000.0, 245.0, 110.0)], 750.0, 0.45, 8_000.0),
        // Hwasong-12 class: single stage, ~1.65 m diameter, ~4,500 km, light RV.
        "irbm" => class(vec![stage(20_000.0, 1_950.0, 310.0, 130.0)], 650.0, 0.65, 10_000.0),
        // Hwasong-15 class: two stages, 2.4 m first-stage diameter, ~13,000 km minimum-energy.
        "icbm" => class(
            vec![stage(52_000.0, 5_500.0, 278.0, 95.0), stage(9_500.0, 1_600.0, 307.0, 100.0)],
            1_000.0,
            1.3,
            15_000.0,
        ),
        _ => return None,
    })
}

/// Names accepted by [`missile_class`].
pub const MISSILE_CLASSES: [&str; 4] = ["srbm", "mrbm", "irbm", "icbm"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_classes_are_valid_and_ordered_by_energy() {
        let mut last_dv = 0.0;
        for name in MISSILE_CLASSES {
            let v = missile_class(name).unwrap();
            v.validate().unwrap();
            let dv = v.ideal_delta_v_mps();
            assert!(dv > last_dv, "{name}: Δv {dv} not above the previous class");
            last_dv = dv;
        }
        assert!(missile_class("cruise").is_none());
    }

    #[test]
    fn nonsense_is_refused() {
        let mut v = missile_class("srbm").unwrap();
        v.stages[0].isp_s = 2_000.0;
        assert!(v.validate().unwrap_err().to_string().contains("isp_s"));
        let mut v = missile_class("srbm").unwrap();
        v.stages[0].burn_time_s = 600.0;
        assert!(v.validate().unwrap_err().to_string().contains("does not lift"));
        let mut v = missile_class("srbm").unwrap();
        v.payload_kg = f64::NAN;
        assert!(v.validate().is_err());
    }
}
