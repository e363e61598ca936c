//! 0-db's shared argument validators and C-style number parsing.

use super::{fail, Fail};
use bytes::Bytes;

/// 0-db's longest namespace name.
pub const MAX_NSNAME: usize = 128;
/// 0-db's longest key.
pub const MAX_KEY: usize = 255;

/// `argc == n` (else `-Unexpected arguments`) and no empty argument (`-Invalid argument`).
pub fn exact(args: &[Bytes], n: usize) -> Result<(), Fail> {
    exact_empty_ok(args, n)?;
    no_empty(args)
}

/// `argc == n`, empty arguments allowed.
pub fn exact_empty_ok(args: &[Bytes], n: usize) -> Result<(), Fail> {
    if args.len() != n {
        return fail("Unexpected arguments");
    }
    Ok(())
}

/// `argc >= n` (else `-Missing arguments`) and no empty argument.
pub fn min(args: &[Bytes], n: usize) -> Result<(), Fail> {
    if args.len() < n {
        return fail("Missing arguments");
    }
    no_empty(args)
}

fn no_empty(args: &[Bytes]) -> Result<(), Fail> {
    if args.iter().any(|a| a.is_empty()) {
        return fail("Invalid argument");
    }
    Ok(())
}

/// A namespace name argument: at most 128 bytes (`-Namespace too long`).
pub fn nsname(arg: &Bytes) -> Result<&[u8], Fail> {
    if arg.len() > MAX_NSNAME {
        return fail("Namespace too long");
    }
    Ok(arg)
}

/// An argument of at most `max` bytes (`-Argument too long`).
pub fn overflow(arg: &Bytes, max: usize) -> Result<(), Fail> {
    if arg.len() > max {
        return fail("Argument too long");
    }
    Ok(())
}

/// A key for read commands: at most 255 bytes (`-Invalid key`).
pub fn read_key(arg: &Bytes) -> Result<&[u8], Fail> {
    if arg.len() > MAX_KEY {
        return fail("Invalid key");
    }
    Ok(arg)
}

/// C `atoll`: optional spaces and sign, then leading digits; garbage gives 0, overflow
/// saturates.
pub fn atoll(b: &[u8]) -> i64 {
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut v: i64 = 0;
    while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add(i64::from(d - b'0'));
        i += 1;
    }
    if neg {
        -v
    } else {
        v
    }
}

/// Whether `arg` is a case-insensitive prefix of `word` (0-db's `strncasecmp(arg, word, len(arg))`).
pub fn is_prefix_ci(arg: &[u8], word: &str) -> bool {
    arg.len() <= word.len() && word.as_bytes()[..arg.len()].eq_ignore_ascii_case(arg)
}

/// The namespace name as text; names that are not UTF-8 never exist.
pub fn ns_str(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoll_is_c_like() {
        assert_eq!(atoll(b"123"), 123);
        assert_eq!(atoll(b"  -42abc"), -42);
        assert_eq!(atoll(b"abc"), 0);
        assert_eq!(atoll(b""), 0);
        assert_eq!(atoll(b"99999999999999999999999"), i64::MAX);
    }

    #[test]
    fn prefix() {
        assert!(is_prefix_ci(b"sec", "SECURE"));
        assert!(is_prefix_ci(b"SECURE", "SECURE"));
        assert!(!is_prefix_ci(b"SECUREX", "SECURE"));
        assert!(!is_prefix_ci(b"x", "SECURE"));
    }
}
