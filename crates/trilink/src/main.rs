//! `trilink`: one binary, one subcommand per job. Exit codes: 0 success, 1 failure while
//! running, 2 bad usage or invalid input (documented in docs/cli.md).

mod audit_cmd;
mod bench_cloud;
mod bench_cmd;
mod bench_ingest;
mod cti_cmd;
mod demo_cmd;
mod eval_cmd;
mod https;
mod node_cmd;
mod pki_cmd;
mod progress;
mod proxy;
mod recover_cmd;
mod send_cmd;
mod sim_cmd;
mod track_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "trilink", version, about = "Trilateral missile-warning data sharing: simulate, fuse, share, warn")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A whole federation on this machine: three nodes, their links, and each nation's
    /// simulated sensors streaming a bundled scenario; Ctrl-C stops everything.
    Demo(demo_cmd::DemoArgs),
    /// Simulate a scenario: fly its launches and write truth and sensor measurements as NDJSON.
    Sim(sim_cmd::SimArgs),
    /// Judge the fusion engine against simulator truth over Monte Carlo runs.
    Eval(eval_cmd::EvalArgs),
    /// Run the fusion engine over a file of sensor reports and write the tracks.
    Track(track_cmd::TrackArgs),
    /// Run one nation's node: ingest, the signed log, live fusion, alerts and APIs.
    Node(node_cmd::NodeArgs),
    /// Keys and sensor tokens.
    #[command(subcommand)]
    Pki(pki_cmd::PkiCommand),
    /// Take the node's own records back from its partners after its log lost some (node stopped).
    Recover(recover_cmd::RecoverArgs),
    /// Check a log offline.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Threat intelligence: STIX bundles to and from a node's TAXII collection.
    #[command(subcommand)]
    Cti(cti_cmd::CtiCommand),
    /// Benchmarks that print their figures against a peer or real time.
    #[command(subcommand)]
    Bench(bench_cmd::BenchCommand),
}

/// What went wrong, by who must act: the user (2) or the system (1).
#[derive(Debug)]
pub enum Failure {
    /// Bad input: a malformed scenario, a bad argument.
    Input(anyhow::Error),
    /// Something failed while running: IO, an unflyable launch.
    Run(anyhow::Error),
}

/// The engine configuration from the options `track` and `bench` share.
pub fn engine_config(impact_predictions_per_s: f64, unscented: bool) -> Result<fusion::EngineConfig, Failure> {
    if !(impact_predictions_per_s.is_finite() && (0.0..=10_000.0).contains(&impact_predictions_per_s)) {
        return Err(Failure::Input(anyhow::anyhow!("--impact-predictions-per-s must be in [0, 10000]")));
    }
    let update = if unscented { fusion::UpdateKind::Unscented } else { fusion::UpdateKind::Extended };
    Ok(fusion::EngineConfig { impact_predictions_per_s, update, ..fusion::EngineConfig::default() })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo_cmd::run(&args),
        Command::Sim(args) => sim_cmd::run(&args),
        Command::Eval(args) => eval_cmd::run(&args),
        Command::Track(args) => track_cmd::run(&args),
        Command::Bench(cmd) => bench_cmd::run(&cmd),
        Command::Node(args) => node_cmd::run(&args),
        Command::Pki(cmd) => pki_cmd::run(&cmd),
        Command::Audit(cmd) => audit_cmd::run(&cmd),
        Command::Recover(args) => recover_cmd::run(&args),
        Command::Cti(cmd) => cti_cmd::run(&cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
