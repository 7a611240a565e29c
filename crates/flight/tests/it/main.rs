//! Integration tests of the flight crate: physics against closed forms, numerical convergence,
//! the trajectory solver, and public reference flights.

mod physics;
mod reference;
mod solver;
