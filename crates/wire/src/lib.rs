//! The wire format: the protobuf messages and gRPC services of `proto/trilink/v1`, generated at
//! build time. Only boundary code (ingest, the log, the node's servers) uses these types; the
//! fusion core never sees them (STYLE habit 5).

#[allow(clippy::all, missing_debug_implementations, unreachable_pub)]
pub mod v1 {
    tonic::include_proto!("trilink.v1");
}

/// Nanoseconds since the Unix epoch of a wire timestamp, as the vocabulary's instant type.
pub use v1::*;
