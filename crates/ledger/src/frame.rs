//! The frame codec of segment files (layout in the crate documentation).

use crate::MAX_FRAME_BYTES;

/// Bytes before a frame's payload: length, CRC, type.
pub const HEADER_BYTES: usize = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameType {
    Record = 1,
    Checkpoint = 2,
    Withheld = 3,
}

/// Why a frame could not be read at an offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame header cut short ({0} bytes left)")]
    TruncatedHeader(usize),
    #[error("frame length {0} exceeds the limit")]
    TooLong(u32),
    #[error("frame payload cut short ({have} of {want} bytes)")]
    TruncatedPayload { have: usize, want: usize },
    #[error("frame checksum mismatch")]
    Checksum,
    #[error("unknown frame type {0}")]
    UnknownType(u8),
}

fn crc(kind: u8, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&[kind]), payload)
}

/// Appends one frame to `out`.
pub fn encode(kind: FrameType, payload: &[u8], out: &mut Vec<u8>) {
    assert!(payload.len() as u64 <= u64::from(MAX_FRAME_BYTES), "frame of {} bytes", payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc(kind as u8, payload).to_le_bytes());
    out.push(kind as u8);
    out.extend_from_slice(payload);
}

/// Reads the frame at the start of `buf`: its type, payload and total length.
pub fn decode(buf: &[u8]) -> Result<(FrameType, &[u8], usize), FrameError> {
    if buf.len() < HEADER_BYTES {
        return Err(FrameError::TruncatedHeader(buf.len()));
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLong(len));
    }
    let want = len as usize;
    let have = buf.len() - HEADER_BYTES;
    if have < want {
        return Err(FrameError::TruncatedPayload { have, want });
    }
    let stored = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let kind = buf[8];
    let payload = &buf[HEADER_BYTES..HEADER_BYTES + want];
    if crc(kind, payload) != stored {
        return Err(FrameError::Checksum);
    }
    let kind = match kind {
        1 => FrameType::Record,
        2 => FrameType::Checkpoint,
        3 => FrameType::Withheld,
        other => return Err(FrameError::UnknownType(other)),
    };
    Ok((kind, payload, HEADER_BYTES + want))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_damage_is_named() {
        let mut buf = Vec::new();
        encode(FrameType::Record, b"hello", &mut buf);
        encode(FrameType::Checkpoint, b"", &mut buf);
        let (k, p, n) = decode(&buf).unwrap();
        assert_eq!((k, p, n), (FrameType::Record, &b"hello"[..], 14));
        assert_eq!(decode(&buf[n..]).unwrap().0, FrameType::Checkpoint);
        assert_eq!(decode(&buf[..5]), Err(FrameError::TruncatedHeader(5)));
        assert_eq!(decode(&buf[..12]), Err(FrameError::TruncatedPayload { have: 3, want: 5 }));
        let mut flipped = buf.clone();
        flipped[10] ^= 0x20;
        assert_eq!(decode(&flipped), Err(FrameError::Checksum));
        let mut long = buf.clone();
        long[3] = 0xff;
        assert!(matches!(decode(&long), Err(FrameError::TooLong(_))));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }
}
