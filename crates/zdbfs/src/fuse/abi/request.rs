//! One request, decoded once: [`Operation::decode`] turns an opcode, its fixed argument
//! struct and the bytes after it (names, data) into a typed [`Operation`] whose names and
//! data borrow from the request buffer.
//!
//! Owns: which opcode carries which struct and which names, and the errno of a malformed
//! request: EINVAL for a body too short for what its opcode carries or a name without its
//! NUL; an opcode this server does not know decodes to [`Operation::Unknown`] (answered
//! ENOSYS). Decoding is safe code and never panics, whatever the bytes.
//!
//! Must not touch: what an operation does (`ops`), the transports' framing (they split the
//! request into header, fixed struct and rest before calling here), replies.

use super::op;
use super::structs::*;
use crate::error::{Errno, FsResult};

/// A request after its header. Names are without their NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation<'a> {
    Lookup {
        name: &'a [u8],
    },
    Forget(ForgetIn),
    BatchForget(Forgets<'a>),
    Getattr,
    Setattr(SetattrIn),
    Readlink,
    Symlink {
        name: &'a [u8],
        target: &'a [u8],
    },
    Mknod {
        arg: MknodIn,
        name: &'a [u8],
    },
    Mkdir {
        arg: MkdirIn,
        name: &'a [u8],
    },
    Unlink {
        name: &'a [u8],
    },
    Rmdir {
        name: &'a [u8],
    },
    Rename {
        arg: RenameIn,
        name: &'a [u8],
        newname: &'a [u8],
    },
    Rename2 {
        arg: Rename2In,
        name: &'a [u8],
        newname: &'a [u8],
    },
    Link {
        arg: LinkIn,
        newname: &'a [u8],
    },
    Open(OpenIn),
    Read(ReadIn),
    /// `data` is the `arg.size` bytes after the struct.
    Write {
        arg: WriteIn,
        data: &'a [u8],
    },
    Statfs,
    Release(ReleaseIn),
    Flush,
    Fsync,
    /// `value` is the `arg.size` bytes after the name.
    Setxattr {
        arg: SetxattrIn,
        name: &'a [u8],
        value: &'a [u8],
    },
    Getxattr {
        arg: GetxattrIn,
        name: &'a [u8],
    },
    Listxattr(GetxattrIn),
    Removexattr {
        name: &'a [u8],
    },
    Opendir,
    Readdir(ReadIn),
    Readdirplus(ReadIn),
    Releasedir(ReleaseIn),
    Fsyncdir,
    Access(AccessIn),
    Create {
        arg: CreateIn,
        name: &'a [u8],
    },
    Interrupt,
    Destroy,
    Ioctl(IoctlIn),
    Fallocate(FallocateIn),
    Lseek(LseekIn),
    /// An opcode this server does not answer.
    Unknown(u32),
}

/// The entries of a BATCH_FORGET: as many whole `fuse_forget_one` as follow its header, up
/// to the count it gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forgets<'a> {
    count: u32,
    entries: &'a [u8],
}

impl Iterator for Forgets<'_> {
    type Item = ForgetOne;

    fn next(&mut self) -> Option<ForgetOne> {
        if self.count == 0 || self.entries.len() < ForgetOne::SIZE {
            return None;
        }
        let (one, rest) = self.entries.split_at(ForgetOne::SIZE);
        self.entries = rest;
        self.count -= 1;
        parse(one).ok()
    }
}

/// A cursor over what follows the fixed struct: names and data, every read bounds-checked.
struct Rest<'a>(&'a [u8]);

impl<'a> Rest<'a> {
    /// The next `n` bytes.
    fn bytes(&mut self, n: usize) -> FsResult<&'a [u8]> {
        if self.0.len() < n {
            return Err(Errno::EINVAL);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    /// A NUL-terminated string (without its NUL).
    fn cstr(&mut self) -> FsResult<&'a [u8]> {
        let end = self.0.iter().position(|&c| c == 0).ok_or(Errno::EINVAL)?;
        let s = self.bytes(end)?;
        self.bytes(1)?;
        Ok(s)
    }
}

impl<'a> Operation<'a> {
    /// Decode the request `opcode` from its fixed argument struct and the bytes after it.
    pub fn decode(opcode: u32, fixed: &'a [u8], rest: &'a [u8]) -> FsResult<Operation<'a>> {
        use Operation as O;
        let mut r = Rest(rest);
        Ok(match opcode {
            op::LOOKUP => O::Lookup { name: r.cstr()? },
            op::FORGET => O::Forget(parse(fixed)?),
            op::BATCH_FORGET => {
                let arg: BatchForgetIn = parse(fixed)?;
                O::BatchForget(Forgets {
                    count: arg.count,
                    entries: rest,
                })
            }
            op::GETATTR => O::Getattr,
            op::SETATTR => O::Setattr(parse(fixed)?),
            op::READLINK => O::Readlink,
            op::SYMLINK => {
                let name = r.cstr()?;
                O::Symlink {
                    name,
                    target: r.cstr()?,
                }
            }
            op::MKNOD => {
                let arg = parse(fixed)?;
                O::Mknod {
                    arg,
                    name: r.cstr()?,
                }
            }
            op::MKDIR => {
                let arg = parse(fixed)?;
                O::Mkdir {
                    arg,
                    name: r.cstr()?,
                }
            }
            op::UNLINK => O::Unlink { name: r.cstr()? },
            op::RMDIR => O::Rmdir { name: r.cstr()? },
            op::RENAME => {
                let arg = parse(fixed)?;
                let name = r.cstr()?;
                O::Rename {
                    arg,
                    name,
                    newname: r.cstr()?,
                }
            }
            op::RENAME2 => {
                let arg = parse(fixed)?;
                let name = r.cstr()?;
                O::Rename2 {
                    arg,
                    name,
                    newname: r.cstr()?,
                }
            }
            op::LINK => {
                let arg = parse(fixed)?;
                O::Link {
                    arg,
                    newname: r.cstr()?,
                }
            }
            op::OPEN => O::Open(parse(fixed)?),
            op::READ => O::Read(parse(fixed)?),
            op::WRITE => {
                let arg: WriteIn = parse(fixed)?;
                O::Write {
                    arg,
                    data: r.bytes(arg.size as usize)?,
                }
            }
            op::STATFS => O::Statfs,
            op::RELEASE => O::Release(parse(fixed)?),
            op::FLUSH => O::Flush,
            op::FSYNC => O::Fsync,
            op::SETXATTR => {
                let arg: SetxattrIn = parse(fixed)?;
                let name = r.cstr()?;
                O::Setxattr {
                    arg,
                    name,
                    value: r.bytes(arg.size as usize)?,
                }
            }
            op::GETXATTR => {
                let arg = parse(fixed)?;
                O::Getxattr {
                    arg,
                    name: r.cstr()?,
                }
            }
            op::LISTXATTR => O::Listxattr(parse(fixed)?),
            op::REMOVEXATTR => O::Removexattr { name: r.cstr()? },
            op::OPENDIR => O::Opendir,
            op::READDIR => O::Readdir(parse(fixed)?),
            op::READDIRPLUS => O::Readdirplus(parse(fixed)?),
            op::RELEASEDIR => O::Releasedir(parse(fixed)?),
            op::FSYNCDIR => O::Fsyncdir,
            op::ACCESS => O::Access(parse(fixed)?),
            op::CREATE => {
                let arg = parse(fixed)?;
                O::Create {
                    arg,
                    name: r.cstr()?,
                }
            }
            op::INTERRUPT => O::Interrupt,
            op::DESTROY => O::Destroy,
            op::IOCTL => O::Ioctl(parse(fixed)?),
            op::FALLOCATE => O::Fallocate(parse(fixed)?),
            op::LSEEK => O::Lseek(parse(fixed)?),
            other => O::Unknown(other),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_and_data_borrow_from_the_request() {
        let rest = b"old\0new\0";
        let mut fixed = Vec::new();
        Rename2In {
            newdir: 5,
            flags: 1,
            padding: 0,
        }
        .put(&mut fixed);
        let o = Operation::decode(op::RENAME2, &fixed, rest).unwrap();
        assert_eq!(
            o,
            Operation::Rename2 {
                arg: Rename2In {
                    newdir: 5,
                    flags: 1,
                    padding: 0
                },
                name: b"old",
                newname: b"new"
            }
        );
        let e = Operation::decode(op::SYMLINK, &[], b"name\0target");
        assert_eq!(e, Err(Errno::EINVAL), "an unterminated string is malformed");
        let mut w = Vec::new();
        WriteIn {
            size: 4,
            ..Default::default()
        }
        .put(&mut w);
        let o = Operation::decode(op::WRITE, &w, b"datatail").unwrap();
        assert!(matches!(o, Operation::Write { data: b"data", .. }));
        let short = Operation::decode(op::WRITE, &w, b"dat");
        assert_eq!(short, Err(Errno::EINVAL), "less data than announced");
        assert_eq!(
            Operation::decode(9999, &[], &[]),
            Ok(Operation::Unknown(9999))
        );
    }

    #[test]
    fn batch_forget_stops_at_count_or_at_a_partial_entry() {
        let mut fixed = Vec::new();
        BatchForgetIn { count: 5, dummy: 0 }.put(&mut fixed);
        let mut rest = Vec::new();
        for i in 0..3u64 {
            ForgetOne {
                nodeid: i,
                nlookup: 1,
            }
            .put(&mut rest);
        }
        rest.extend_from_slice(&[1; 9]);
        let Ok(Operation::BatchForget(f)) = Operation::decode(op::BATCH_FORGET, &fixed, &rest)
        else {
            panic!("a batch forget")
        };
        assert_eq!(f.map(|f| f.nodeid).collect::<Vec<_>>(), [0, 1, 2]);
        fixed[..4].copy_from_slice(&2u32.to_ne_bytes());
        let Ok(Operation::BatchForget(f)) = Operation::decode(op::BATCH_FORGET, &fixed, &rest)
        else {
            panic!("a batch forget")
        };
        assert_eq!(f.count(), 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]
        /// Arbitrary bytes under any opcode decode to an operation or EINVAL, never a panic.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            opcode in prop_oneof![0u32..64, any::<u32>()],
            fixed in proptest::collection::vec(any::<u8>(), 0..128),
            rest in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            match Operation::decode(opcode, &fixed, &rest) {
                Ok(Operation::BatchForget(f)) => {
                    prop_assert!(f.count() <= rest.len() / ForgetOne::SIZE);
                }
                Ok(_) => {}
                Err(e) => prop_assert_eq!(e, Errno::EINVAL),
            }
        }
    }
}
