//! The chain state machine, sans IO: seals new records of an origin, signs checkpoints, and
//! verifies records and checkpoints received (or read back) in order.

use crate::{link_hash, record_digest, Hash, HASH_LEN};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use prost::Message;
use vocab::{Nation, UtcNanos};
use wire::{Checkpoint, Record, RecordKind, SignedCheckpoint, Withheld};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("failed to decode record: {0}")]
    DecodeRecord(String),
    #[error("failed to decode withheld stub: {0}")]
    DecodeWithheld(String),
    #[error("failed to decode checkpoint: {0}")]
    DecodeCheckpoint(String),
    #[error("failed to verify record: origin {found} where {expected} was expected")]
    WrongOrigin { expected: Nation, found: String },
    #[error("failed to verify record: seq {found} where {expected} was expected (the chain is gap-free from 1)")]
    WrongSeq { expected: u64, found: u64 },
    #[error("failed to verify record {seq}: prev_hash does not match the hash of record {}", seq - 1)]
    BrokenLink { seq: u64 },
    #[error("failed to verify checkpoint at seq {seq}: {why}")]
    BadCheckpoint { seq: u64, why: String },
}

/// A freshly sealed record: its number, its exact bytes and their hash.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub seq: u64,
    pub bytes: Vec<u8>,
    pub hash: Hash,
}

/// One origin's chain head: the last sequence number and its record's hash. The same type
/// seals records (the origin's own log) and verifies them (a replica, the audit, recovery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    origin: Nation,
    seq: u64,
    head: Hash,
    /// Highest seq covered by a verified checkpoint.
    covered: u64,
}

/// Proof that a checkpoint's signature verified: which bytes (their SHA-256), which key, and
/// the origin, seq and head they sign. Only this module makes one — by verifying the signature
/// (`Chain::verify_checkpoint`) or by signing (`Chain::checkpoint_proven`) — so a second chain
/// at the same head (a store's, after a link's or a writer's own) can take the checkpoint with
/// `Chain::accept_proven` without verifying the signature again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    origin: Nation,
    seq: u64,
    head: Hash,
    key: VerifyingKey,
    digest: Hash,
}

impl Proven {
    /// The key the checkpoint was signed with.
    pub fn key(&self) -> VerifyingKey {
        self.key
    }
}

/// What a record must carry to be sealed.
#[derive(Debug, Clone)]
pub struct NewRecord<'a> {
    pub time: UtcNanos,
    pub releasable_to: &'a [Nation],
    pub kind: RecordKind,
    pub body: Vec<u8>,
}

impl Chain {
    /// An empty chain of `origin`.
    pub fn new(origin: Nation) -> Chain {
        Chain { origin, seq: 0, head: [0; HASH_LEN], covered: 0 }
    }

    /// A chain continuing from a known head (read back from a store).
    pub fn resume(origin: Nation, seq: u64, head: Hash, covered: u64) -> Chain {
        Chain { origin, seq, head, covered }
    }

    pub fn origin(&self) -> Nation {
        self.origin
    }

    /// The last record's sequence number (0: none yet).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn head(&self) -> Hash {
        self.head
    }

    /// Highest seq a verified checkpoint covers.
    pub fn covered(&self) -> u64 {
        self.covered
    }

    /// Seals the origin's next record.
    pub fn seal(&mut self, new: NewRecord<'_>) -> Sealed {
        self.seal_derived(new, 0)
    }

    /// Seals the origin's next record as a transformed copy of its record `derived_from`.
    pub fn seal_derived(&mut self, new: NewRecord<'_>, derived_from: u64) -> Sealed {
        let record = Record {
            derived_from,
            origin: self.origin.as_str().to_string(),
            seq: self.seq + 1,
            origin_time_unix_ns: new.time.as_nanos(),
            releasable_to: new.releasable_to.iter().map(|n| n.as_str().to_string()).collect(),
            kind: new.kind as i32,
            prev_hash: self.head.to_vec(),
            body: new.body,
        };
        let bytes = record.encode_to_vec();
        let hash = link_hash(&self.head, &record.releasable_to, &record_digest(&bytes));
        self.seq += 1;
        self.head = hash;
        Sealed { seq: self.seq, bytes, hash }
    }

    /// Signs a checkpoint over the current head and returns its encoded `SignedCheckpoint`.
    /// The chain trusts its own signature, so the head becomes covered.
    pub fn checkpoint(&mut self, key: &SigningKey, time: UtcNanos) -> Vec<u8> {
        self.checkpoint_proven(key, time).0
    }

    /// `checkpoint`, with the proof a store takes in place of verifying the signature just made.
    pub fn checkpoint_proven(&mut self, key: &SigningKey, time: UtcNanos) -> (Vec<u8>, Proven) {
        let checkpoint = Checkpoint {
            origin: self.origin.as_str().to_string(),
            seq: self.seq,
            head_hash: self.head.to_vec(),
            time_unix_ns: time.as_nanos(),
        }
        .encode_to_vec();
        let signature = key.sign(&checkpoint).to_bytes().to_vec();
        self.covered = self.seq;
        let bytes = SignedCheckpoint { checkpoint, signature, public_key: key.verifying_key().to_bytes().to_vec() }
            .encode_to_vec();
        let proof = Proven {
            origin: self.origin,
            seq: self.seq,
            head: self.head,
            key: key.verifying_key(),
            digest: record_digest(&bytes),
        };
        (bytes, proof)
    }

    /// Verifies that `bytes` is the next record of this chain and advances the head. Returns the
    /// decoded record.
    pub fn verify_next(&mut self, bytes: &[u8]) -> Result<Record, ChainError> {
        let record = Record::decode(bytes).map_err(|e| ChainError::DecodeRecord(e.to_string()))?;
        if record.origin != self.origin.as_str() {
            return Err(ChainError::WrongOrigin { expected: self.origin, found: record.origin });
        }
        if record.seq != self.seq + 1 {
            return Err(ChainError::WrongSeq { expected: self.seq + 1, found: record.seq });
        }
        if record.prev_hash.as_slice() != self.head.as_slice() {
            return Err(ChainError::BrokenLink { seq: record.seq });
        }
        self.seq = record.seq;
        self.head = link_hash(&record.prev_hash, &record.releasable_to, &record_digest(bytes));
        Ok(record)
    }

    /// Verifies that `bytes` is a `Withheld` stub standing for this chain's next record and
    /// advances the head across it.
    pub fn verify_withheld(&mut self, bytes: &[u8]) -> Result<Withheld, ChainError> {
        let stub = Withheld::decode(bytes).map_err(|e| ChainError::DecodeWithheld(e.to_string()))?;
        if stub.origin != self.origin.as_str() {
            return Err(ChainError::WrongOrigin { expected: self.origin, found: stub.origin });
        }
        if stub.seq != self.seq + 1 {
            return Err(ChainError::WrongSeq { expected: self.seq + 1, found: stub.seq });
        }
        if stub.prev_hash.as_slice() != self.head.as_slice() {
            return Err(ChainError::BrokenLink { seq: stub.seq });
        }
        let digest: Hash = stub.digest.as_slice().try_into().map_err(|_| {
            ChainError::DecodeWithheld(format!("digest of {} bytes, not {HASH_LEN}", stub.digest.len()))
        })?;
        self.seq = stub.seq;
        self.head = link_hash(&stub.prev_hash, &stub.releasable_to, &digest);
        Ok(stub)
    }

    /// Verifies a signed checkpoint against the key trusted for this origin (`None`: trust the
    /// key the checkpoint names, which proves only internal consistency) and the chain as read
    /// so far. A checkpoint may only cover the current head: records are checkpointed in
    /// order, so a checkpoint for any other seq is a fault. Returns the signer's key.
    pub fn verify_checkpoint(&mut self, bytes: &[u8], trusted: Option<&VerifyingKey>) -> Result<Proven, ChainError> {
        let seq = self.seq;
        let bad = |why: String| ChainError::BadCheckpoint { seq, why };
        let signed = SignedCheckpoint::decode(bytes).map_err(|e| ChainError::DecodeCheckpoint(e.to_string()))?;
        let key_bytes: [u8; 32] =
            signed.public_key.as_slice().try_into().map_err(|_| bad("public key is not 32 bytes".into()))?;
        let key = VerifyingKey::from_bytes(&key_bytes).map_err(|e| bad(format!("public key: {e}")))?;
        self.check_trusted(&key, trusted)?;
        let signature = Signature::from_slice(&signed.signature).map_err(|e| bad(format!("signature: {e}")))?;
        key.verify(&signed.checkpoint, &signature).map_err(|_| bad("signature does not verify".into()))?;
        let checkpoint = Checkpoint::decode(signed.checkpoint.as_slice())
            .map_err(|e| ChainError::DecodeCheckpoint(e.to_string()))?;
        self.check_signed_head(&checkpoint.origin, checkpoint.seq, &checkpoint.head_hash)?;
        self.covered = self.seq;
        Ok(Proven { origin: self.origin, seq: self.seq, head: self.head, key, digest: record_digest(bytes) })
    }

    /// Takes a checkpoint whose signature `proof` shows verified, without verifying it again:
    /// the proof must be of exactly `bytes`, sign this chain's origin, seq and head, and (where
    /// `trusted` is given) be by that key.
    pub fn accept_proven(
        &mut self,
        bytes: &[u8],
        proof: &Proven,
        trusted: Option<&VerifyingKey>,
    ) -> Result<(), ChainError> {
        if proof.digest != record_digest(bytes) {
            return Err(ChainError::BadCheckpoint { seq: self.seq, why: "the proof is of other bytes".into() });
        }
        self.check_trusted(&proof.key, trusted)?;
        self.check_signed_head(proof.origin.as_str(), proof.seq, &proof.head)?;
        self.covered = self.seq;
        Ok(())
    }

    /// A checkpoint must be signed by the key trusted for this origin, where one is given.
    fn check_trusted(&self, key: &VerifyingKey, trusted: Option<&VerifyingKey>) -> Result<(), ChainError> {
        match trusted {
            Some(trusted) if trusted != key => Err(ChainError::BadCheckpoint {
                seq: self.seq,
                why: format!("signed by {}, not by the key trusted for {}", hex::encode(key.to_bytes()), self.origin),
            }),
            _ => Ok(()),
        }
    }

    /// A checkpoint's origin, seq and head hash must be this chain's own.
    fn check_signed_head(&self, origin: &str, seq: u64, head: &[u8]) -> Result<(), ChainError> {
        let bad = |why: String| ChainError::BadCheckpoint { seq: self.seq, why };
        if origin != self.origin.as_str() {
            return Err(bad(format!("checkpoint of origin {origin}")));
        }
        if seq != self.seq {
            return Err(bad(format!("checkpoint names seq {seq} but the chain is at {}", self.seq)));
        }
        if head != self.head.as_slice() {
            return Err(bad("head hash differs from the chain's".into()));
        }
        Ok(())
    }
}

/// The head of a chain just past `bytes`, one of its records (or of a stub's record, whose
/// link is the same): what every holder of the chain through that record has as its head.
pub fn head_after(bytes: &[u8]) -> Result<Hash, ChainError> {
    let record = Record::decode(bytes).map_err(|e| ChainError::DecodeRecord(e.to_string()))?;
    Ok(link_hash(&record.prev_hash, &record.releasable_to, &record_digest(bytes)))
}

/// `head_after` for a `Withheld` stub: the head past the record it stands for.
pub fn head_after_withheld(bytes: &[u8]) -> Result<Hash, ChainError> {
    let stub = Withheld::decode(bytes).map_err(|e| ChainError::DecodeWithheld(e.to_string()))?;
    let digest: Hash =
        stub.digest.as_slice().try_into().map_err(|_| {
            ChainError::DecodeWithheld(format!("digest of {} bytes, not {HASH_LEN}", stub.digest.len()))
        })?;
    Ok(link_hash(&stub.prev_hash, &stub.releasable_to, &digest))
}

/// The `Withheld` stub that stands for a record (given as its exact bytes) on the way to a
/// holder that may not see it.
pub fn withhold(bytes: &[u8]) -> Result<Vec<u8>, ChainError> {
    let record = Record::decode(bytes).map_err(|e| ChainError::DecodeRecord(e.to_string()))?;
    Ok(Withheld {
        origin: record.origin,
        seq: record.seq,
        prev_hash: record.prev_hash,
        digest: record_digest(bytes).to_vec(),
        releasable_to: record.releasable_to,
    }
    .encode_to_vec())
}

/// Whether the holder `owner` is owed the record a stub stands for: one whose marking names
/// it, or one of its own (a node that took its records back from a partner, which held that
/// one only as a stub). Every store keeps such stubs as owed until the record fills them.
pub fn owed_to(owner: Nation, stub: &Withheld) -> bool {
    stub.origin == owner.as_str() || stub.releasable_to.iter().any(|n| n == owner.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn seal(chain: &mut Chain, body: &[u8]) -> Sealed {
        chain.seal(NewRecord {
            time: UtcNanos::from_nanos(1),
            releasable_to: &[],
            kind: RecordKind::Heartbeat,
            body: body.to_vec(),
        })
    }

    #[test]
    fn sealed_records_and_checkpoints_verify_in_order() {
        let usa = Nation::parse("USA").unwrap();
        let mut writer = Chain::new(usa);
        let mut reader = Chain::new(usa);
        for i in 0..5u8 {
            let s = seal(&mut writer, &[i]);
            assert_eq!(reader.verify_next(&s.bytes).unwrap().body, vec![i]);
        }
        let cp = writer.checkpoint(&key(1), UtcNanos::from_nanos(2));
        reader.verify_checkpoint(&cp, Some(&key(1).verifying_key())).unwrap();
        assert_eq!((reader.seq(), reader.covered(), reader.head()), (5, 5, writer.head()));
    }

    /// A holder's head through a record is the head the origin had there, and no other
    /// record under that seq gives it.
    #[test]
    fn the_head_after_a_record_is_the_chains_there_and_only_its() {
        let usa = Nation::parse("USA").unwrap();
        let mut writer = Chain::new(usa);
        let mut fork = Chain::new(usa);
        seal(&mut writer, b"one");
        seal(&mut fork, b"one");
        let two = seal(&mut writer, b"two");
        assert_eq!(head_after(&two.bytes).unwrap(), writer.head());
        let other = seal(&mut fork, b"two, sealed again after a restore");
        assert_eq!(other.seq, two.seq);
        assert_ne!(head_after(&other.bytes).unwrap(), writer.head());
        assert!(head_after(b"not a record").is_err());
        // A stub's holder has the same head there.
        let stub = withhold(&two.bytes).unwrap();
        assert_eq!(head_after_withheld(&stub).unwrap(), writer.head());
    }

    #[test]
    fn withheld_stubs_carry_the_chain_and_pin_what_was_sent() {
        let usa = Nation::parse("USA").unwrap();
        let mut writer = Chain::new(usa);
        let recs: Vec<Sealed> = (0..4u8).map(|i| seal(&mut writer, &[i])).collect();
        let cp = writer.checkpoint(&key(1), UtcNanos::from_nanos(2));
        // Records 2 and 3 withheld: the chain and the checkpoint still verify.
        let mut reader = Chain::new(usa);
        reader.verify_next(&recs[0].bytes).unwrap();
        reader.verify_withheld(&withhold(&recs[1].bytes).unwrap()).unwrap();
        reader.verify_withheld(&withhold(&recs[2].bytes).unwrap()).unwrap();
        reader.verify_next(&recs[3].bytes).unwrap();
        reader.verify_checkpoint(&cp, Some(&key(1).verifying_key())).unwrap();
        // A forged record followed by the honest stub of the next one: the stub's prev_hash is
        // the honest link of record 1, so the stub — or, if the forger rewrites it, the
        // checkpoint — refuses.
        let mut forged = Record::decode(recs[0].bytes.as_slice()).unwrap();
        forged.body = b"z".to_vec();
        let mut reader = Chain::new(usa);
        reader.verify_next(&forged.encode_to_vec()).unwrap();
        assert_eq!(reader.verify_withheld(&withhold(&recs[1].bytes).unwrap()), Err(ChainError::BrokenLink { seq: 2 }));
        let mut rewritten = Withheld::decode(withhold(&recs[1].bytes).unwrap().as_slice()).unwrap();
        rewritten.prev_hash = reader.head().to_vec();
        reader.verify_withheld(&rewritten.encode_to_vec()).unwrap();
        reader.verify_withheld(&withhold(&recs[2].bytes).unwrap()).unwrap_err();
        // Nor can a relay misstate the marking of what it withholds.
        let mut misstated = Withheld::decode(withhold(&recs[1].bytes).unwrap().as_slice()).unwrap();
        misstated.releasable_to = vec!["KOR".into()];
        let mut reader = Chain::new(usa);
        reader.verify_next(&recs[0].bytes).unwrap();
        reader.verify_withheld(&misstated.encode_to_vec()).unwrap();
        assert_eq!(reader.verify_next(&recs[2].bytes), Err(ChainError::BrokenLink { seq: 3 }));
        // A stub with another digest cannot stand for the record either.
        let mut lie = Withheld::decode(withhold(&recs[0].bytes).unwrap().as_slice()).unwrap();
        lie.digest = vec![7; 32];
        let mut reader = Chain::new(usa);
        reader.verify_withheld(&lie.encode_to_vec()).unwrap();
        assert_eq!(reader.verify_next(&recs[1].bytes), Err(ChainError::BrokenLink { seq: 2 }));
    }

    #[test]
    fn every_kind_of_tampering_is_caught() {
        let usa = Nation::parse("USA").unwrap();
        let mut writer = Chain::new(usa);
        let a = seal(&mut writer, b"a");
        let b = seal(&mut writer, b"b");
        // A gap.
        assert!(matches!(Chain::new(usa).verify_next(&b.bytes), Err(ChainError::WrongSeq { expected: 1, found: 2 })));
        // Another origin.
        let mut jpn = Chain::new(Nation::parse("JPN").unwrap());
        assert!(matches!(jpn.verify_next(&a.bytes), Err(ChainError::WrongOrigin { .. })));
        // A changed body breaks the next link.
        let mut forged = Record::decode(a.bytes.as_slice()).unwrap();
        forged.body = b"z".to_vec();
        let mut reader = Chain::new(usa);
        reader.verify_next(&forged.encode_to_vec()).unwrap();
        assert_eq!(reader.verify_next(&b.bytes), Err(ChainError::BrokenLink { seq: 2 }));
        // A checkpoint by another key, or over another head.
        let mut reader = Chain::new(usa);
        reader.verify_next(&a.bytes).unwrap();
        reader.verify_next(&b.bytes).unwrap();
        let cp = writer.checkpoint(&key(2), UtcNanos::from_nanos(3));
        let err = reader.verify_checkpoint(&cp, Some(&key(1).verifying_key())).unwrap_err();
        assert!(err.to_string().contains("not by the key trusted"), "{err}");
        let mut short = Chain::new(usa);
        short.verify_next(&a.bytes).unwrap();
        assert!(short.verify_checkpoint(&cp, None).unwrap_err().to_string().contains("chain is at 1"));
        // A flipped signature bit.
        let mut signed = SignedCheckpoint::decode(cp.as_slice()).unwrap();
        signed.signature[0] ^= 1;
        let err = reader.verify_checkpoint(&signed.encode_to_vec(), None).unwrap_err();
        assert!(err.to_string().contains("does not verify"), "{err}");
        // Garbage.
        assert!(matches!(reader.verify_next(&[0xff, 0xff, 0xff]), Err(ChainError::DecodeRecord(_))));
    }

    /// A proof stands only for the bytes it was made from, over the head they sign, by the key
    /// that signed them: a second chain at that head takes it, anything else is refused and
    /// leaves the chain uncovered.
    #[test]
    fn a_proven_checkpoint_is_taken_only_at_its_own_head() {
        let usa = Nation::parse("USA").unwrap();
        let mut writer = Chain::new(usa);
        let a = seal(&mut writer, b"a");
        let b = seal(&mut writer, b"b");
        let (cp, made) = writer.checkpoint_proven(&key(1), UtcNanos::from_nanos(3));
        let mut link = Chain::new(usa);
        link.verify_next(&a.bytes).unwrap();
        link.verify_next(&b.bytes).unwrap();
        let mut store = link.clone();
        let verified = link.verify_checkpoint(&cp, Some(&key(1).verifying_key())).unwrap();
        assert_eq!(verified, made, "signing and verifying prove the same thing");
        let trusted = key(1).verifying_key();
        // Other bytes (even another checkpoint over the same head), another key trusted,
        // another head or seq, another origin: refused, and the chain stays uncovered.
        let (other_cp, _) = writer.clone().checkpoint_proven(&key(1), UtcNanos::from_nanos(4));
        let refusals = [
            (store.clone(), other_cp.clone(), Some(trusted), "other bytes"),
            (store.clone(), cp.clone(), Some(key(2).verifying_key()), "not by the key trusted"),
            (Chain::resume(usa, 1, a.hash, 0), cp.clone(), None, "chain is at 1"),
            (Chain::resume(usa, 2, a.hash, 0), cp.clone(), None, "head hash differs"),
            (Chain::resume(Nation::parse("JPN").unwrap(), 2, b.hash, 0), cp.clone(), None, "origin USA"),
        ];
        for (mut chain, bytes, trusted, why) in refusals {
            let err = chain.accept_proven(&bytes, &made, trusted.as_ref()).unwrap_err();
            assert!(err.to_string().contains(why), "{err}");
            assert_eq!(chain.covered(), 0);
        }
        store.accept_proven(&cp, &made, Some(&trusted)).unwrap();
        assert_eq!((store.covered(), store.head()), (2, writer.head()));
    }

    proptest::proptest! {
        /// Whatever bytes arrive as a record or a checkpoint, verification answers with an
        /// error or a value, never a panic, and a failed check leaves the chain where it was.
        #[test]
        fn arbitrary_bytes_never_panic_or_move_the_chain(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let usa = Nation::parse("USA").unwrap();
            let mut chain = Chain::new(usa);
            let before = chain.clone();
            if chain.verify_next(&bytes).is_err() {
                proptest::prop_assert_eq!(&chain, &before);
            }
            let mut chain = before.clone();
            if chain.verify_withheld(&bytes).is_err() {
                proptest::prop_assert_eq!(&chain, &before);
            }
            let mut chain = before.clone();
            if chain.verify_checkpoint(&bytes, None).is_err() {
                proptest::prop_assert_eq!(&chain, &before);
            }
        }
    }
}
