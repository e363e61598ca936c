//! zdb's protocol facts shared by server and client.

use sha1::{Digest, Sha1};

/// The response to a secure-authentication challenge: the lowercase hex SHA-1 of
/// `nonce ":" password`, as 0-db expects after `AUTH SECURE CHALLENGE`.
pub fn secure_hash(nonce: &str, password: &str) -> String {
    let mut h = Sha1::new();
    h.update(nonce.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    hex::encode(h.finalize())
}

/// Field names of `NSINFO`'s `key: value` lines (0-db's names).
pub mod nsinfo {
    pub const NAME: &str = "name";
    pub const ENTRIES: &str = "entries";
    pub const PUBLIC: &str = "public";
    pub const PASSWORD: &str = "password";
    pub const WORM: &str = "worm";
    pub const LOCKED: &str = "locked";
    pub const DATA_SIZE_BYTES: &str = "data_size_bytes";
    pub const DATA_LIMITS_BYTES: &str = "data_limits_bytes";
    pub const INDEX_SIZE_BYTES: &str = "index_size_bytes";
    pub const MODE: &str = "mode";
    pub const DATA_DISK_FREESPACE_BYTES: &str = "data_disk_freespace_bytes";
    pub const INDEX_DISK_FREESPACE_BYTES: &str = "index_disk_freespace_bytes";
    pub const DATA_CURRENT_ID: &str = "data_current_id";
    pub const DATA_CURRENT_OFFSET: &str = "data_current_offset";
    /// `MODE`'s values.
    pub const MODE_USER: &str = "userkey";
    pub const MODE_SEQ: &str = "sequential";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // sha1("abc:secret"), computed independently with sha1sum.
        assert_eq!(
            secure_hash("abc", "secret"),
            "2caf0b982aabed7e83a8995de852f48d7311bc8b"
        );
    }
}
