//! 3-DOF flight of ballistic missiles over a rotating WGS-84 Earth: J2 gravity, the U.S.
//! Standard Atmosphere 1976 with drag from a ballistic coefficient, staged thrust under a pitch
//! programme, and the solver that shapes that programme into minimum-energy, lofted or
//! depressed trajectories. No IO, no clock: a flight is a pure function of its inputs.

pub mod atmosphere;
pub mod gravity;
mod solve;
mod trajectory;
mod vehicle;

pub use gravity::GravityModel;
pub use solve::{solve_program, Shape, SolveError, SolvedLaunch};
pub use trajectory::{
    ballistic_impact, fly, fly_ballistic, BallisticImpact, FlightConfig, FlightError, Phase, PitchProgram, Sample,
    Trajectory, DENSE_AIR_M, TERMINAL_BELOW_M,
};
pub use vehicle::{missile_class, Stage, Vehicle, VehicleError, MISSILE_CLASSES};
