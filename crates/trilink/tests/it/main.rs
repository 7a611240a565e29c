//! The `trilink` binary as a user runs it.

mod access_e2e;
mod architecture;
mod bench_cli;
mod cot_e2e;
mod eval_cli;
mod federation_e2e;
mod harness;
#[path = "../../src/https.rs"]
mod https;
mod jetstream_e2e;
mod node_e2e;
#[path = "../../src/proxy.rs"]
mod proxy;
mod sim_cli;
mod taxii_e2e;
mod track_cli;
