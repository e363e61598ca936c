//! The AES-256-GCM key type (never printed).

use aws_lc_rs::aead::{LessSafeKey, UnboundKey, AES_256_GCM};

/// A 32-byte AES-256-GCM key.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    /// Wrap raw key bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parse 64 hex characters; the error says what is wrong.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        if text.len() != 64 {
            return Err(format!(
                "must be 64 hex characters (32 bytes), got {} characters",
                text.len()
            ));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|e| format!("not hexadecimal: {e}"))?;
        Ok(Self(bytes))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn aead(&self) -> LessSafeKey {
        // A 32-byte key is always valid for AES-256-GCM.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0).expect("32-byte AES-256 key"))
    }
}
