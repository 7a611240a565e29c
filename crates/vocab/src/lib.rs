//! The shared vocabulary of trilink: UTC instants and nation codes.
//!
//! These types carry their preconditions (STYLE habit 6): once an [`UtcNanos`] or a [`Nation`]
//! exists it is valid. The crate does no IO and derives no serialization; wire and file formats
//! convert at their own boundary.

mod nation;
mod time;

pub use nation::{Nation, NationError};
pub use time::{TimeError, UtcNanos, NANOS_PER_SECOND};
