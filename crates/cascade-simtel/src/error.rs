//! Errors of the sim_telarray reader.
//!
//! Every error says where it happened: the file, the byte offset in the *decompressed*
//! stream and the EventIO object type being read (when one was being read). Decoders work
//! on byte slices and report [`DecodeError`]s with an offset relative to the object payload;
//! the reader turns them into [`SimtelError`]s with absolute offsets.

use std::fmt;
use std::path::PathBuf;

use crate::eventio::object_type_name;

/// Where an error happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The input file.
    pub path: PathBuf,
    /// Byte offset in the decompressed stream.
    pub offset: u64,
    /// EventIO type of the object being read, if any.
    pub object_type: Option<u16>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, byte {} of the decompressed data",
            self.path.display(),
            self.offset
        )?;
        match self.object_type {
            Some(t) => write!(f, ", object type {t} ({})", object_type_name(t)),
            None => write!(f, ", between objects"),
        }
    }
}

/// Errors reading a sim_telarray file.
#[derive(Debug, thiserror::Error)]
pub enum SimtelError {
    /// The operating system refused to open or read the input.
    #[error("{at}: cannot read input: {source}")]
    Io {
        /// Where.
        at: Location,
        /// The underlying I/O error (including decompression errors).
        #[source]
        source: std::io::Error,
    },
    /// The input does not start with an EventIO sync marker.
    #[error("{at}: not an EventIO stream (no sync marker 0xD41F8A37)")]
    NotEventIo {
        /// Where.
        at: Location,
    },
    /// The stream ended inside an object.
    #[error("{at}: truncated input: {what}")]
    Truncated {
        /// Where.
        at: Location,
        /// What was being read.
        what: String,
    },
    /// An object's content contradicts the format.
    #[error("{at}: malformed object: {what}")]
    Malformed {
        /// Where.
        at: Location,
        /// What is wrong.
        what: String,
    },
    /// A format variant this reader does not decode.
    #[error("{at}: unsupported: {what}")]
    Unsupported {
        /// Where.
        at: Location,
        /// What is not supported.
        what: String,
    },
}

impl SimtelError {
    /// Where the error happened.
    pub fn location(&self) -> &Location {
        match self {
            SimtelError::Io { at, .. }
            | SimtelError::NotEventIo { at }
            | SimtelError::Truncated { at, .. }
            | SimtelError::Malformed { at, .. }
            | SimtelError::Unsupported { at, .. } => at,
        }
    }
}

/// Kind of a decoding problem inside one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The payload ended before the field.
    Truncated(&'static str),
    /// A field has an impossible value.
    Invalid(String),
    /// A version or mode this decoder does not handle.
    Unsupported(String),
}

/// A decoding problem at `offset` bytes into the payload of an object of type `object_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Offset relative to the start of the object's payload (or of the slice decoded).
    pub offset: usize,
    /// Type of the (innermost) object being decoded.
    pub object_type: u16,
    /// What went wrong.
    pub kind: DecodeErrorKind,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "object type {} ({}) at payload byte {}: ",
            self.object_type,
            object_type_name(self.object_type),
            self.offset
        )?;
        match &self.kind {
            DecodeErrorKind::Truncated(what) => write!(f, "truncated reading {what}"),
            DecodeErrorKind::Invalid(what) => write!(f, "{what}"),
            DecodeErrorKind::Unsupported(what) => write!(f, "unsupported {what}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    /// Converts into a [`SimtelError`], given the file and the absolute stream offset of the
    /// slice the decoder's offsets are relative to.
    pub(crate) fn at(self, path: &std::path::Path, base_offset: u64) -> SimtelError {
        let at = Location {
            path: path.to_path_buf(),
            offset: base_offset + self.offset as u64,
            object_type: Some(self.object_type),
        };
        match self.kind {
            DecodeErrorKind::Truncated(what) => SimtelError::Truncated {
                at,
                what: format!("object payload ends while reading {what}"),
            },
            DecodeErrorKind::Invalid(what) => SimtelError::Malformed { at, what },
            DecodeErrorKind::Unsupported(what) => SimtelError::Unsupported { at, what },
        }
    }
}
