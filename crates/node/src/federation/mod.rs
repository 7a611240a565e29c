//! Federation: links to partner nodes over mutual TLS (docs/federation.md).
//!
//! `protocol` decides (egress policy, ingress verification, sans IO); `tls` makes and checks
//! identities; `serve` is the sending side (a gRPC service partners subscribe to); `link` the
//! receiving side (one task per partner that dials, subscribes, applies and acknowledges);
//! `releases` the signed audit log of release decisions.

pub mod protocol;
