//! The kernel's fixed request argument structs (`in_args[0]` of a request, `fuse_*_in` in
//! `include/uapi/linux/fuse.h`, protocol 7.45) as typed Rust structs, field for field and in
//! the kernel's order, and their safe decoding from native-endian bytes.
//!
//! Owns: the layouts (each struct's size is checked against the kernel's at compile time)
//! and the rule for a short body: one shorter than [`Body::REQUIRED`] (the prefix up to the
//! last field this server uses) is EINVAL; fields past the end of a longer but still short
//! body read as zero (they are ones no handler looks at). Decoding never panics.
//!
//! Must not touch: what a request means (that is [`super::request`] and `ops`), replies.

use crate::error::{Errno, FsResult};

/// Reads fields off a request body in order; bytes past the body's end read as zero.
pub struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut v = [0u8; N];
        let n = N.min(self.0.len());
        let (head, tail) = self.0.split_at(n);
        v[..n].copy_from_slice(head);
        self.0 = tail;
        v
    }
}

/// A field type of the kernel's structs.
pub trait Field: Copy {
    const LEN: usize;
    fn read(f: &mut Fields<'_>) -> Self;
    /// Appends the field's bytes (the test encoder).
    #[cfg(test)]
    fn put(self, out: &mut Vec<u8>);
}

impl Field for u32 {
    const LEN: usize = 4;
    fn read(f: &mut Fields<'_>) -> Self {
        u32::from_ne_bytes(f.take())
    }
    #[cfg(test)]
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_ne_bytes());
    }
}

impl Field for u64 {
    const LEN: usize = 8;
    fn read(f: &mut Fields<'_>) -> Self {
        u64::from_ne_bytes(f.take())
    }
    #[cfg(test)]
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_ne_bytes());
    }
}

/// A request argument struct of the kernel's.
pub trait Body: Sized {
    /// Its size in the kernel's ABI.
    const SIZE: usize;
    /// The shortest body accepted (up to the end of the last field a handler uses).
    const REQUIRED: usize;
    fn read(f: &mut Fields<'_>) -> Self;
    /// Its bytes as the kernel lays them out (the test encoder).
    #[cfg(test)]
    fn put(&self, out: &mut Vec<u8>);
}

/// Decode a `T` from the start of `b` (EINVAL if `b` is shorter than `T::REQUIRED`).
pub fn parse<T: Body>(b: &[u8]) -> FsResult<T> {
    if b.len() < T::REQUIRED {
        return Err(Errno::EINVAL);
    }
    Ok(T::read(&mut Fields(b)))
}

/// Declares a kernel struct: its fields in the kernel's order, its size (checked) and how
/// much of it a request must carry.
macro_rules! kernel_struct {
    ($(#[$doc:meta])* $name:ident: size $size:literal, required $req:literal {
        $($(#[$fdoc:meta])* $field:ident: $ty:ty),* $(,)?
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: $ty),*
        }

        impl Body for $name {
            const SIZE: usize = 0 $(+ <$ty as Field>::LEN)*;
            const REQUIRED: usize = $req;
            fn read(f: &mut Fields<'_>) -> Self {
                // Struct expressions evaluate their fields in the order written.
                $name { $($field: Field::read(f)),* }
            }
            #[cfg(test)]
            fn put(&self, out: &mut Vec<u8>) {
                $(Field::put(self.$field, out);)*
            }
        }

        const _: () = assert!(<$name as Body>::SIZE == $size && $req <= $size);
    };
}

kernel_struct! {
    /// `fuse_forget_in` (FORGET).
    ForgetIn: size 8, required 8 { nlookup: u64 }
}

kernel_struct! {
    /// `fuse_forget_one`: one entry of a BATCH_FORGET, after its `fuse_batch_forget_in`.
    ForgetOne: size 16, required 16 { nodeid: u64, nlookup: u64 }
}

kernel_struct! {
    /// `fuse_batch_forget_in` (BATCH_FORGET): how many `fuse_forget_one` follow.
    BatchForgetIn: size 8, required 4 { count: u32, dummy: u32 }
}

kernel_struct! {
    /// `fuse_setattr_in` (SETATTR): `valid` says which of the other fields are set
    /// ([`super::fattr`]).
    SetattrIn: size 88, required 84 {
        valid: u32,
        padding: u32,
        fh: u64,
        size: u64,
        lock_owner: u64,
        atime: u64,
        mtime: u64,
        ctime: u64,
        atimensec: u32,
        mtimensec: u32,
        ctimensec: u32,
        mode: u32,
        unused4: u32,
        uid: u32,
        gid: u32,
        unused5: u32,
    }
}

kernel_struct! {
    /// `fuse_mknod_in` (MKNOD), before the name.
    MknodIn: size 16, required 8 { mode: u32, rdev: u32, umask: u32, padding: u32 }
}

kernel_struct! {
    /// `fuse_mkdir_in` (MKDIR), before the name.
    MkdirIn: size 8, required 4 { mode: u32, umask: u32 }
}

kernel_struct! {
    /// `fuse_rename_in` (RENAME), before the old and the new name.
    RenameIn: size 8, required 8 { newdir: u64 }
}

kernel_struct! {
    /// `fuse_rename2_in` (RENAME2), before the old and the new name.
    Rename2In: size 16, required 12 { newdir: u64, flags: u32, padding: u32 }
}

kernel_struct! {
    /// `fuse_link_in` (LINK), before the new name.
    LinkIn: size 8, required 8 { oldnodeid: u64 }
}

kernel_struct! {
    /// `fuse_open_in` (OPEN; OPENDIR carries one too, unread).
    OpenIn: size 8, required 4 { flags: u32, open_flags: u32 }
}

kernel_struct! {
    /// `fuse_read_in` (READ, READDIR, READDIRPLUS).
    ReadIn: size 40, required 20 {
        fh: u64,
        offset: u64,
        size: u32,
        read_flags: u32,
        lock_owner: u64,
        flags: u32,
        padding: u32,
    }
}

kernel_struct! {
    /// `fuse_write_in` (WRITE), before the data.
    WriteIn: size 40, required 24 {
        fh: u64,
        offset: u64,
        size: u32,
        write_flags: u32,
        lock_owner: u64,
        flags: u32,
        padding: u32,
    }
}

kernel_struct! {
    /// `fuse_release_in` (RELEASE, RELEASEDIR).
    ReleaseIn: size 24, required 8 { fh: u64, flags: u32, release_flags: u32, lock_owner: u64 }
}

kernel_struct! {
    /// `fuse_setxattr_in` (SETXATTR) in its 8-byte form, the one sent while FUSE_SETXATTR_EXT
    /// is not negotiated (it is not); before the name and the value.
    SetxattrIn: size 8, required 8 { size: u32, flags: u32 }
}

kernel_struct! {
    /// `fuse_getxattr_in` (GETXATTR before the name, LISTXATTR).
    GetxattrIn: size 8, required 4 { size: u32, padding: u32 }
}

kernel_struct! {
    /// `fuse_access_in` (ACCESS).
    AccessIn: size 8, required 4 { mask: u32, padding: u32 }
}

kernel_struct! {
    /// `fuse_create_in` (CREATE), before the name.
    CreateIn: size 16, required 8 { flags: u32, mode: u32, umask: u32, open_flags: u32 }
}

kernel_struct! {
    /// `fuse_ioctl_in` (IOCTL).
    IoctlIn: size 32, required 16 {
        fh: u64,
        flags: u32,
        cmd: u32,
        arg: u64,
        in_size: u32,
        out_size: u32,
    }
}

kernel_struct! {
    /// `fuse_fallocate_in` (FALLOCATE).
    FallocateIn: size 32, required 28 { fh: u64, offset: u64, length: u64, mode: u32, padding: u32 }
}

kernel_struct! {
    /// `fuse_lseek_in` (LSEEK).
    LseekIn: size 24, required 20 { fh: u64, offset: u64, whence: u32, padding: u32 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Encode with the test encoder, decode, compare; a body one byte short of what is
    /// required is refused, and one short of the full size reads its missing tail as zero.
    fn round_trip<T: Body + PartialEq + std::fmt::Debug>(v: T) {
        let mut b = Vec::new();
        v.put(&mut b);
        assert_eq!(b.len(), T::SIZE, "the encoder lays out the whole struct");
        assert_eq!(parse::<T>(&b).unwrap(), v);
        if T::REQUIRED > 0 {
            assert_eq!(parse::<T>(&b[..T::REQUIRED - 1]).err(), Some(Errno::EINVAL));
        }
        let short = parse::<T>(&b[..T::REQUIRED]).unwrap();
        let mut padded = b[..T::REQUIRED].to_vec();
        padded.resize(T::SIZE, 0);
        assert_eq!(short, parse::<T>(&padded).unwrap());
    }

    proptest! {
        #[test]
        fn typed_structs_round_trip(a in any::<[u64; 8]>(), w in any::<[u32; 10]>()) {
            round_trip(SetattrIn {
                valid: w[0], padding: w[1], fh: a[0], size: a[1], lock_owner: a[2],
                atime: a[3], mtime: a[4], ctime: a[5], atimensec: w[2], mtimensec: w[3],
                ctimensec: w[4], mode: w[5], unused4: w[6], uid: w[7], gid: w[8], unused5: w[9],
            });
            round_trip(WriteIn {
                fh: a[0], offset: a[1], size: w[0], write_flags: w[1], lock_owner: a[2],
                flags: w[2], padding: w[3],
            });
            round_trip(Rename2In { newdir: a[0], flags: w[0], padding: w[1] });
            round_trip(IoctlIn {
                fh: a[0], flags: w[0], cmd: w[1], arg: a[1], in_size: w[2], out_size: w[3],
            });
            round_trip(FallocateIn { fh: a[0], offset: a[1], length: a[2], mode: w[0], padding: w[1] });
            round_trip(LseekIn { fh: a[0], offset: a[1], whence: w[0], padding: w[1] });
            round_trip(MknodIn { mode: w[0], rdev: w[1], umask: w[2], padding: w[3] });
            round_trip(ForgetOne { nodeid: a[0], nlookup: a[1] });
        }
    }

    #[test]
    fn fields_are_native_endian_in_kernel_order() {
        let mut b = Vec::new();
        b.extend_from_slice(&7u64.to_ne_bytes());
        b.extend_from_slice(&(-3i64 as u64).to_ne_bytes());
        b.extend_from_slice(&4u32.to_ne_bytes());
        let l: LseekIn = parse(&b).unwrap();
        assert_eq!((l.fh, l.offset as i64, l.whence), (7, -3, 4));
    }
}
