//! Offline verification of a log directory (`trilink audit verify DIR`): every frame's
//! checksum, every origin's chain from seq 1, every checkpoint's signature against the key
//! trusted for its origin. Reads only; never repairs. Names the first bad record.

use crate::chain::Chain;
use crate::store::{list_origins, list_segments, scan_segment};
use ed25519_dalek::VerifyingKey;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use vocab::Nation;

/// The verdict on one origin's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginAudit {
    pub origin: Nation,
    pub records: u64,
    pub checkpoints: u64,
    /// Highest seq covered by a verified checkpoint.
    pub covered: u64,
    /// Records after the last checkpoint (an interrupted write: never acknowledged).
    pub uncovered_tail: u64,
    /// The signer of its checkpoints (hex), if any.
    pub signer: Option<String>,
    /// Whether `signer` was checked against a key given by the auditor.
    pub key_trusted: bool,
    /// The first fault, if any: the file, byte offset, the last good seq and what is wrong.
    pub fault: Option<Fault>,
    /// Records filled into stubs (`fills.dat`), each checked against its stub's digest.
    pub fills: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub path: PathBuf,
    pub offset: u64,
    /// The first record that does not verify (the one after the last good one).
    pub bad_seq: u64,
    pub why: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("failed to read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("failed to audit {0}: it holds no origin directories (USA/, JPN/, …)")]
    Empty(PathBuf),
}

/// Verifies every origin in `dir`. `trusted` keys are checked where given; for other origins
/// the key the first checkpoint names is pinned (internal consistency only, and said so).
pub fn verify_dir(dir: &Path, trusted: &BTreeMap<Nation, VerifyingKey>) -> Result<Vec<OriginAudit>, AuditError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AuditError::Io { path, source }
    };
    let origins = list_origins(dir).map_err(io(dir))?;
    if origins.is_empty() {
        return Err(AuditError::Empty(dir.to_path_buf()));
    }
    let mut out = Vec::new();
    for (origin, path) in origins {
        let segments = list_segments(&path).map_err(io(&path))?;
        let mut audit = OriginAudit {
            origin,
            records: 0,
            checkpoints: 0,
            covered: 0,
            uncovered_tail: 0,
            signer: None,
            key_trusted: trusted.contains_key(&origin),
            fault: None,
            fills: 0,
        };
        let mut chain = Chain::new(origin);
        let mut stubs = BTreeMap::new();
        let mut pinned = trusted.get(&origin).copied();
        for (first_seq, seg) in &segments {
            if *first_seq != chain.seq() + 1 {
                audit.fault = Some(Fault {
                    path: seg.clone(),
                    offset: 0,
                    bad_seq: chain.seq() + 1,
                    why: format!("segment starts at seq {first_seq}, expected {}", chain.seq() + 1),
                });
                break;
            }
            let data = fs::read(seg).map_err(io(seg))?;
            if pinned.is_none() {
                pinned = first_signer(&data, &chain);
            }
            let scan = scan_segment(&data, &mut chain, pinned.as_ref(), None);
            stubs.extend(scan.stubs.iter().copied());
            audit.records += scan.records;
            audit.checkpoints += scan.checkpoints;
            audit.covered = scan.good_chain.covered().max(audit.covered);
            if let Some((offset, why)) = scan.failure {
                audit.fault = Some(Fault { path: seg.clone(), offset: offset as u64, bad_seq: chain.seq() + 1, why });
                break;
            }
        }
        // Records filled into stubs must be exactly the records the stubs stand for.
        let fills = path.join(crate::store::FILLS_FILE);
        if audit.fault.is_none() && fills.exists() {
            let data = fs::read(&fills).map_err(io(&fills))?;
            let (good, len) = crate::store::scan_fills(&data, &stubs);
            audit.fills = good.len() as u64;
            if len != data.len() {
                audit.fault = Some(Fault {
                    path: fills.clone(),
                    offset: len as u64,
                    bad_seq: 0,
                    why: "a filled record that is not the one its stub stands for, or a torn frame".into(),
                });
            }
        }
        audit.signer = pinned.map(|k| hex::encode(k.to_bytes()));
        audit.uncovered_tail = chain.seq().saturating_sub(audit.covered);
        out.push(audit);
    }
    Ok(out)
}

/// The key named by the first checkpoint in a segment, found by a trial scan that trusts it.
fn first_signer(data: &[u8], chain: &Chain) -> Option<VerifyingKey> {
    let mut offset = 0;
    let mut probe = chain.clone();
    while let Ok((kind, payload, n)) = crate::frame::decode(&data[offset..]) {
        match kind {
            crate::frame::FrameType::Record => {
                probe.verify_next(payload).ok()?;
            }
            crate::frame::FrameType::Withheld => {
                probe.verify_withheld(payload).ok()?;
            }
            crate::frame::FrameType::Checkpoint => return probe.verify_checkpoint(payload, None).ok().map(|p| p.key()),
        }
        offset += n;
    }
    None
}
