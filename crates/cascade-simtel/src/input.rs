//! Opening an input file as a decompressed byte stream. The compression is detected from the
//! magic bytes (gzip `1f 8b`, zstd `28 b5 2f fd`), not from the file name; anything else
//! is read as plain EventIO.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// How many bytes of an input file (as stored, before decompression) its stream has read:
/// a handle that another thread can poll to report progress.
#[derive(Debug, Clone, Default)]
pub struct FileProgress(Arc<AtomicU64>);

impl FileProgress {
    /// Bytes of the file read so far.
    pub fn bytes_read(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A reader that counts what it reads into a [`FileProgress`].
struct Counting<R> {
    inner: R,
    progress: FileProgress,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens `path` as a buffered, decompressed stream.
pub fn open_decompressed(path: &Path) -> std::io::Result<(Box<dyn BufRead + Send>, Compression)> {
    open_with_progress(path).map(|(stream, compression, _)| (stream, compression))
}

/// [`open_decompressed`], with a handle on how much of the file the stream has read.
pub fn open_with_progress(
    path: &Path,
) -> std::io::Result<(Box<dyn BufRead + Send>, Compression, FileProgress)> {
    let progress = FileProgress::default();
    let counting = Counting {
        inner: File::open(path)?,
        progress: progress.clone(),
    };
    let mut file = BufReader::with_capacity(BUFFER_SIZE, counting);
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
    Ok((stream, compression, progress))
}
