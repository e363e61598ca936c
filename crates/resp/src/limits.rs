//! Decoder limits: the upper bounds applied to every length a peer declares.

/// Upper bounds enforced while decoding.
///
/// Every bound is checked as soon as the corresponding header has been read, before any
/// payload is buffered, scanned or allocated for, so a peer cannot make the decoder
/// allocate or wait for more than these sizes.
///
/// The defaults are sized for zdb: values are at most 8 MiB (the 0-db payload limit), and
/// replies nest at most a few levels deep (`SCAN` uses three).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted bulk string payload, in bytes. Default: 8 MiB (`8 * 1024 * 1024`).
    pub max_bulk_len: usize,
    /// Largest accepted array element count (for requests: the argument count).
    /// Default: 65 536.
    pub max_array_len: usize,
    /// Longest accepted line, in bytes, excluding its terminator: an inline command, or
    /// the text of a simple string / error / integer frame. Default: 64 KiB.
    pub max_inline_len: usize,
    /// Deepest accepted array nesting; a flat array has depth 1. Requests are always
    /// limited to depth 1 regardless of this value. Default: 8.
    pub max_depth: usize,
}

impl Limits {
    /// Default for [`Limits::max_bulk_len`]: 8 MiB.
    pub const DEFAULT_MAX_BULK_LEN: usize = 8 * 1024 * 1024;
    /// Default for [`Limits::max_array_len`]: 65 536 elements.
    pub const DEFAULT_MAX_ARRAY_LEN: usize = 65_536;
    /// Default for [`Limits::max_inline_len`]: 64 KiB.
    pub const DEFAULT_MAX_INLINE_LEN: usize = 64 * 1024;
    /// Default for [`Limits::max_depth`]: 8 levels.
    pub const DEFAULT_MAX_DEPTH: usize = 8;

    /// Returns these limits with [`Limits::max_bulk_len`] replaced.
    #[must_use]
    pub fn with_max_bulk_len(mut self, n: usize) -> Self {
        self.max_bulk_len = n;
        self
    }

    /// Returns these limits with [`Limits::max_array_len`] replaced.
    #[must_use]
    pub fn with_max_array_len(mut self, n: usize) -> Self {
        self.max_array_len = n;
        self
    }

    /// Returns these limits with [`Limits::max_inline_len`] replaced.
    #[must_use]
    pub fn with_max_inline_len(mut self, n: usize) -> Self {
        self.max_inline_len = n;
        self
    }

    /// Returns these limits with [`Limits::max_depth`] replaced.
    #[must_use]
    pub fn with_max_depth(mut self, n: usize) -> Self {
        self.max_depth = n;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: Self::DEFAULT_MAX_BULK_LEN,
            max_array_len: Self::DEFAULT_MAX_ARRAY_LEN,
            max_inline_len: Self::DEFAULT_MAX_INLINE_LEN,
            max_depth: Self::DEFAULT_MAX_DEPTH,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values() {
        let l = Limits::default();
        assert_eq!(l.max_bulk_len, 8 * 1024 * 1024);
        assert_eq!(l.max_array_len, 65_536);
        assert_eq!(l.max_inline_len, 64 * 1024);
        assert_eq!(l.max_depth, 8);
    }

    #[test]
    fn builders_replace_one_field() {
        let l = Limits::default().with_max_bulk_len(10).with_max_depth(2);
        assert_eq!(l.max_bulk_len, 10);
        assert_eq!(l.max_depth, 2);
        assert_eq!(l.max_array_len, Limits::DEFAULT_MAX_ARRAY_LEN);
    }
}
