//! The `trilink` binary as a user runs it.

mod sim_cli;
