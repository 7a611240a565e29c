//! Integration tests of the geodesy crate.

mod oracle;
