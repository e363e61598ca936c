//! Chunk compression: snappy (raw block format, 0-stor v2's algorithm), lz4 (block) and zstd
//! (level 3), each into caller-provided buffers so nothing is allocated per chunk.

use serde::{Deserialize, Serialize};

use crate::Error;

/// Compression algorithm of an object. The numeric codes are stored in stripe headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Stored as is (used per chunk when compressing does not shrink it).
    None,
    /// Snappy raw format.
    Snappy,
    /// LZ4 block format.
    Lz4,
    /// Zstandard, level 3.
    Zstd,
}

/// zstd level used for chunks.
const ZSTD_LEVEL: i32 = 3;

impl Compression {
    /// Parse a config name (`snappy`, `lz4`, `zstd`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "snappy" => Some(Self::Snappy),
            "lz4" => Some(Self::Lz4),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }

    /// The code stored in stripe headers.
    pub fn code(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Snappy => 1,
            Self::Lz4 => 2,
            Self::Zstd => 3,
        }
    }

    /// Inverse of [`Compression::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::None),
            1 => Some(Self::Snappy),
            2 => Some(Self::Lz4),
            3 => Some(Self::Zstd),
            _ => None,
        }
    }

    /// Worst-case output size for `len` input bytes.
    pub fn max_len(self, len: usize) -> usize {
        match self {
            Self::None => len,
            Self::Snappy => snap::raw::max_compress_len(len),
            Self::Lz4 => lz4_flex::block::get_maximum_output_size(len),
            Self::Zstd => zstd::zstd_safe::compress_bound(len),
        }
    }
}

/// Reusable compressor/decompressor contexts.
pub(crate) struct Codecs {
    snappy_enc: snap::raw::Encoder,
    snappy_dec: snap::raw::Decoder,
    zstd_enc: Option<zstd::bulk::Compressor<'static>>,
    zstd_dec: Option<zstd::bulk::Decompressor<'static>>,
}

impl Codecs {
    pub(crate) fn new() -> Self {
        Self {
            snappy_enc: snap::raw::Encoder::new(),
            snappy_dec: snap::raw::Decoder::new(),
            zstd_enc: None,
            zstd_dec: None,
        }
    }

    /// Compress `input` into `out` (at least `algo.max_len(input.len())` long); returns the
    /// compressed length.
    pub(crate) fn compress(
        &mut self,
        algo: Compression,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let fail = |e: &dyn std::fmt::Display| Error::Compression(format!("{algo:?}: {e}"));
        match algo {
            Compression::None => {
                out[..input.len()].copy_from_slice(input);
                Ok(input.len())
            }
            Compression::Snappy => self.snappy_enc.compress(input, out).map_err(|e| fail(&e)),
            Compression::Lz4 => lz4_flex::block::compress_into(input, out).map_err(|e| fail(&e)),
            Compression::Zstd => {
                if self.zstd_enc.is_none() {
                    self.zstd_enc =
                        Some(zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| fail(&e))?);
                }
                let enc = self
                    .zstd_enc
                    .as_mut()
                    .ok_or(Error::Compression("zstd".into()))?;
                enc.compress_to_buffer(input, out).map_err(|e| fail(&e))
            }
        }
    }

    /// Decompress `input` into `out`, which must be exactly the original length; `None` when
    /// the input is not a valid stream of that length.
    pub(crate) fn decompress(
        &mut self,
        algo: Compression,
        input: &[u8],
        out: &mut [u8],
    ) -> Option<()> {
        let n = match algo {
            Compression::None => {
                if input.len() != out.len() {
                    return None;
                }
                out.copy_from_slice(input);
                input.len()
            }
            Compression::Snappy => {
                if snap::raw::decompress_len(input).ok()? != out.len() {
                    return None;
                }
                self.snappy_dec.decompress(input, out).ok()?
            }
            Compression::Lz4 => lz4_flex::block::decompress_into(input, out).ok()?,
            Compression::Zstd => {
                if self.zstd_dec.is_none() {
                    self.zstd_dec = Some(zstd::bulk::Decompressor::new().ok()?);
                }
                self.zstd_dec
                    .as_mut()?
                    .decompress_to_buffer(input, out)
                    .ok()?
            }
        };
        (n == out.len()).then_some(())
    }
}
