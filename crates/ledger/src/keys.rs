//! Key files: an Ed25519 signing key as 64 hex digits of its seed (`node.key`, readable by the
//! node's user only) and the public key as 64 hex digits (`node.pub`). Hex, not PEM, so an
//! operator can compare a key read over the telephone.

use ed25519_dalek::{SigningKey, VerifyingKey};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("failed to parse key: expected 64 hex digits (32 bytes), got {0} characters")]
    Length(usize),
    #[error("failed to parse key: {0}")]
    Hex(#[from] hex::FromHexError),
    #[error("failed to parse public key: {0}")]
    Point(String),
}

fn bytes32(text: &str) -> Result<[u8; 32], KeyError> {
    let text = text.trim();
    if text.len() != 64 {
        return Err(KeyError::Length(text.len()));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)?;
    Ok(out)
}

pub fn parse_signing_key(text: &str) -> Result<SigningKey, KeyError> {
    Ok(SigningKey::from_bytes(&bytes32(text)?))
}

pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_bytes(&bytes32(text)?).map_err(|e| KeyError::Point(e.to_string()))
}

pub fn signing_key_text(key: &SigningKey) -> String {
    format!("{}\n", hex::encode(key.to_bytes()))
}

pub fn public_key_text(key: &VerifyingKey) -> String {
    format!("{}\n", hex::encode(key.to_bytes()))
}
