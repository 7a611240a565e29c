//! Nation codes: ISO 3166-1 alpha-3 shaped (three upper-case ASCII letters), e.g. `USA`, `JPN`, `KOR`.

use std::fmt;

/// A nation known by its three-letter code. Nothing in trilink assumes a fixed set of nations.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nation([u8; 3]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NationError {
    #[error("failed to parse nation code {0:?}: expected three upper-case letters such as \"USA\"")]
    Malformed(String),
}

impl Nation {
    /// Parses a code of exactly three upper-case ASCII letters.
    pub fn parse(code: &str) -> Result<Nation, NationError> {
        let bytes = code.as_bytes();
        if bytes.len() == 3 && bytes.iter().all(u8::is_ascii_uppercase) {
            Ok(Nation([bytes[0], bytes[1], bytes[2]]))
        } else {
            Err(NationError::Malformed(code.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        // The constructor admits only ASCII, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for Nation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Nation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nation({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_codes_and_rejects_the_rest() {
        for good in ["USA", "JPN", "KOR", "GBR"] {
            assert_eq!(Nation::parse(good).map(|n| n.to_string()), Ok(good.to_string()));
        }
        for bad in ["", "us", "usa", "USAA", "U S", "ÜSA", "12A"] {
            assert!(Nation::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
