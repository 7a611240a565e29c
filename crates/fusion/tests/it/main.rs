//! Integration tests of the fusion crate.

mod oracle_filterpy;
