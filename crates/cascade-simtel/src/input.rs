//! Opening an input file as a decompressed byte stream. The compression is detected from the
//! magic bytes (gzip `1f 8b`, zstd `28 b5 2f fd`), not from the file name; anything else
//! is read as plain EventIO.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Compression of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain EventIO.
    None,
    /// gzip (possibly multi-member).
    Gzip,
    /// Zstandard.
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const BUFFER_SIZE: usize = 1 << 17;

/// Detects the compression from the first bytes of a stream.
pub fn detect_compression(head: &[u8]) -> Compression {
    if head.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else if head.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else {
        Compression::None
    }
}

/// Opens `path` as a buffered, decompressed stream.
pub fn open_decompressed(path: &Path) -> std::io::Result<(Box<dyn BufRead + Send>, Compression)> {
    let mut file = BufReader::with_capacity(BUFFER_SIZE, File::open(path)?);
    let compression = detect_compression(file.fill_buf()?);
    let stream: Box<dyn BufRead + Send> = match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            BUFFER_SIZE,
            flate2::bufread::MultiGzDecoder::new(file),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            BUFFER_SIZE,
            zstd::stream::read::Decoder::with_buffer(file)?,
        )),
    };
    Ok((stream, compression))
}
