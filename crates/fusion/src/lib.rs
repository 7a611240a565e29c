//! The fusion engine: tracks ballistic missiles from every nation's radars, space infrared
//! sensors and partner tracks; estimates phase, launch point, burnout, apogee and impact with
//! their uncertainty.
//!
//! Sans-IO (STYLE habit 3): measurements and `now` go in, tracks and products come out; the
//! engine owns no clock, no thread and no socket, so it runs the same under `trilink eval`, in
//! the node, and in tests. See `engine.rs` for the processing order.

pub mod assoc;
pub mod dynamics;
mod engine;
pub mod filter;
pub mod fuse;
pub mod init;
pub mod measurement;
pub mod predict;

pub use engine::{Counters, Engine, EngineConfig, TrackId, TrackStatus, TrackView, UpdateKind};
pub use measurement::{Measurement, Observation, PartnerTrack, RadarObs, SpaceIrObs};
pub use predict::{ImpactPrediction, LaunchEstimate};

/// Elements of the track state.
pub const DIM: usize = 10;
/// Index of the drag parameter κ in the state: the inverse ballistic coefficient, in m² per
/// tonne (1,000 / β with β in kg/m²; 0.125 for β = 8,000 kg/m²).
pub const DRAG: usize = 9;

/// The 10-element track state in ECEF: position (m), velocity (m/s), thrust acceleration
/// (m/s²), and the drag parameter κ (m²/t, see [`DRAG`]).
pub type State = nalgebra::SVector<f64, DIM>;
/// Its covariance.
pub type Cov = nalgebra::SMatrix<f64, DIM, DIM>;
