//! EventIO framing: object headers, top-level objects read from a stream, and sub-objects
//! inside a payload.
//!
//! Layout (pyeventio `header.pyx`, eventio `io_basic.h`/`eventio.c` by K. Bernlöhr):
//!
//! ```text
//! top level:  sync marker 0xD41F8A37 (4 bytes; its byte order gives the file's byte order)
//! every object:
//!   word 0  type info: bits 0-15 type, bit 16 user flag, bit 17 extension present,
//!                      bits 20-31 version
//!   word 1  identifier (signed 32 bit)
//!   word 2  length: bits 0-29 payload length, bit 30 "only sub-objects"
//!   word 3  (only if extension) bits 0-11: payload length bits 30-41
//! payload   `length` bytes: either plain data or a sequence of sub-objects
//!           (which have the same header without the sync marker)
//! ```

use std::io::{BufRead, ErrorKind, Read};

use crate::bytes::ByteReader;
use crate::error::{DecodeError, DecodeErrorKind};

/// The sync marker as read with little-endian byte order.
pub const SYNC_MARKER_LE: [u8; 4] = [0x37, 0x8a, 0x1f, 0xd4];
/// The sync marker as written by a big-endian machine.
pub const SYNC_MARKER_BE: [u8; 4] = [0xd4, 0x1f, 0x8a, 0x37];

/// Header of one EventIO object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectHeader {
    /// Object type (e.g. 2013 for ADC samples).
    pub object_type: u16,
    /// Object version.
    pub version: u16,
    /// The user flag bit.
    pub user_flag: bool,
    /// Identifier (meaning depends on the type: run number, event id, telescope id, flags).
    pub id: i32,
    /// Payload length (bytes).
    pub length: u64,
    /// The payload is made only of sub-objects.
    pub only_sub_objects: bool,
    /// The header has the extension word.
    pub extended: bool,
    /// The payload is big-endian.
    pub big_endian: bool,
}

impl ObjectHeader {
    /// Size of the header (without sync marker) in bytes.
    pub fn header_size(&self) -> usize {
        if self.extended { 16 } else { 12 }
    }

    /// Parses the header words at the start of `data` (no sync marker); returns the header
    /// and its size, or `None` if `data` is too short.
    pub fn parse(data: &[u8], big_endian: bool) -> Option<(ObjectHeader, usize)> {
        let word = |i: usize| -> Option<u32> {
            let b: [u8; 4] = data.get(4 * i..4 * i + 4)?.try_into().ok()?;
            Some(if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        };
        let type_word = word(0)?;
        let id = word(1)? as i32;
        let length_word = word(2)?;
        let extended = type_word & (1 << 17) != 0;
        let mut length = u64::from(length_word & 0x3fff_ffff);
        let mut size = 12;
        if extended {
            length |= u64::from(word(3)? & 0xfff) << 30;
            size = 16;
        }
        let header = ObjectHeader {
            object_type: (type_word & 0xffff) as u16,
            version: ((type_word >> 20) & 0xfff) as u16,
            user_flag: type_word & (1 << 16) != 0,
            id,
            length,
            only_sub_objects: length_word & (1 << 30) != 0,
            extended,
            big_endian,
        };
        Some((header, size))
    }
}

/// One object with its payload borrowed from the enclosing buffer.
#[derive(Debug, Clone, Copy)]
pub struct Object<'a> {
    /// The header.
    pub header: ObjectHeader,
    /// The payload.
    pub payload: &'a [u8],
    /// Offset of the payload relative to the buffer the iteration started from.
    pub payload_offset: usize,
}

impl<'a> Object<'a> {
    /// A field reader over the payload.
    pub fn reader(&self) -> ByteReader<'a> {
        ByteReader::new(
            self.payload,
            self.header.big_endian,
            self.header.object_type,
        )
    }

    /// Iterates the sub-objects of this object's payload.
    pub fn children(&self) -> SubObjects<'a> {
        SubObjects::new(
            self.payload,
            self.header.big_endian,
            self.header.object_type,
        )
    }
}

/// Iterator over the sub-objects packed in a payload. Stops with an error (once) when a
/// header or payload runs past the end of the data.
#[derive(Debug, Clone)]
pub struct SubObjects<'a> {
    data: &'a [u8],
    pos: usize,
    big_endian: bool,
    parent_type: u16,
    failed: bool,
}

impl<'a> SubObjects<'a> {
    /// Sub-objects of `data`, which is the payload of an object of type `parent_type`.
    pub fn new(data: &'a [u8], big_endian: bool, parent_type: u16) -> Self {
        Self {
            data,
            pos: 0,
            big_endian,
            parent_type,
            failed: false,
        }
    }
}

impl<'a> Iterator for SubObjects<'a> {
    type Item = Result<Object<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.pos..];
        let error = |offset, kind| DecodeError {
            offset,
            object_type: self.parent_type,
            kind,
        };
        let Some((header, size)) = ObjectHeader::parse(rest, self.big_endian) else {
            self.failed = true;
            return Some(Err(error(
                self.pos,
                DecodeErrorKind::Truncated("sub-object header"),
            )));
        };
        let start = self.pos + size;
        let available = (self.data.len() - start) as u64;
        if header.length > available {
            self.failed = true;
            return Some(Err(DecodeError {
                offset: self.pos,
                object_type: header.object_type,
                kind: DecodeErrorKind::Invalid(format!(
                    "sub-object length {} exceeds the {} bytes left in its parent (type {})",
                    header.length, available, self.parent_type
                )),
            }));
        }
        let end = start + header.length as usize;
        self.pos = end;
        Some(Ok(Object {
            header,
            payload: &self.data[start..end],
            payload_offset: start,
        }))
    }
}

/// Outcome of reading one top-level object from a stream.
#[derive(Debug)]
pub enum ReadOutcome {
    /// An object was read; its payload is in the buffer passed to [`read_top_level`].
    Object(ObjectHeader),
    /// The stream ended cleanly before a new object.
    EndOfStream,
}

/// Why reading a top-level object failed.
#[derive(Debug)]
pub enum FramingError {
    /// The stream ended inside the object (`consumed` bytes of it were read).
    Truncated {
        /// Bytes of the object read before the end.
        consumed: u64,
        /// The header, if it was complete.
        header: Option<ObjectHeader>,
    },
    /// No sync marker where an object must start.
    BadSync,
    /// Reading failed.
    Io(std::io::Error),
}

/// Reads the next top-level object from `input` into `payload` (cleared first; its capacity
/// is reused). Memory use is bounded by the bytes actually present in the stream, never by
/// the length field alone.
pub fn read_top_level(
    input: &mut dyn BufRead,
    payload: &mut Vec<u8>,
) -> Result<ReadOutcome, FramingError> {
    payload.clear();
    let mut sync = [0u8; 4];
    let got = read_full(input, &mut sync).map_err(FramingError::Io)?;
    if got == 0 {
        return Ok(ReadOutcome::EndOfStream);
    }
    if got < 4 {
        return Err(FramingError::Truncated {
            consumed: got as u64,
            header: None,
        });
    }
    let big_endian = match sync {
        SYNC_MARKER_LE => false,
        SYNC_MARKER_BE => true,
        _ => return Err(FramingError::BadSync),
    };
    let mut words = [0u8; 16];
    let got = read_full(input, &mut words[..12]).map_err(FramingError::Io)?;
    if got < 12 {
        return Err(FramingError::Truncated {
            consumed: 4 + got as u64,
            header: None,
        });
    }
    let extended = {
        let b = [words[0], words[1], words[2], words[3]];
        let type_word = if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        };
        type_word & (1 << 17) != 0
    };
    let header_len = if extended {
        let got = read_full(input, &mut words[12..16]).map_err(FramingError::Io)?;
        if got < 4 {
            return Err(FramingError::Truncated {
                consumed: 16 + got as u64,
                header: None,
            });
        }
        16
    } else {
        12
    };
    let Some((header, _)) = ObjectHeader::parse(&words[..header_len], big_endian) else {
        return Err(FramingError::Truncated {
            consumed: 4 + header_len as u64,
            header: None,
        });
    };
    let read = input
        .take(header.length)
        .read_to_end(payload)
        .map_err(FramingError::Io)?;
    if (read as u64) < header.length {
        return Err(FramingError::Truncated {
            consumed: 4 + header_len as u64 + read as u64,
            header: Some(header),
        });
    }
    Ok(ReadOutcome::Object(header))
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(input: &mut dyn BufRead, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Human-readable name of a sim_telarray / CORSIKA-IACT object type (pyeventio's class
/// names), for messages and statistics.
pub fn object_type_name(object_type: u16) -> &'static str {
    match object_type {
        70 => "History",
        71 => "HistoryCommandLine",
        72 => "HistoryConfig",
        75 => "HistoryMeta",
        100 => "Histograms",
        1200 => "CORSIKARunHeader",
        1201 => "CORSIKATelescopeDefinition",
        1202 => "CORSIKAEventHeader",
        1203 => "CORSIKAArrayOffsets",
        1204 => "CORSIKATelescopeData",
        1205 => "Photons",
        1206 => "CameraLayout",
        1207 => "TriggerTime",
        1208 => "PhotoElectrons",
        1209 => "CORSIKAEventEndBlock",
        1210 => "CORSIKARunEndBlock",
        1211 => "CORSIKALongitudinal",
        1212 => "InputCard",
        1213 => "AtmosphericProfile",
        1215 => "MCExtraParams",
        1216 => "AtmosphericProfile",
        2000 => "RunHeader",
        2001 => "MCRunHeader",
        2002 => "CameraSettings",
        2003 => "CameraOrganization",
        2004 => "PixelSettings",
        2005 => "DisabledPixels",
        2006 => "CameraSoftwareSettings",
        2007 => "PointingCorrection",
        2008 => "DriveSettings",
        2009 => "TriggerInformation",
        2010 => "ArrayEvent",
        2011 => "TelescopeEventHeader",
        2012 => "ADCSums",
        2013 => "ADCSamples",
        2014 => "ImageParameters",
        2015 => "StereoReconstruction",
        2016 => "PixelTiming",
        2017 => "PixelCalibration",
        2020 => "MCShower",
        2021 => "MCEvent",
        2022 => "CameraMonitoring",
        2023 => "LaserCalibration",
        2024 => "RunStatistics",
        2025 => "MCRunStatistics",
        2026 => "MCPhotoelectronSum",
        2027 => "PixelList",
        2028 => "CalibrationEvent",
        2029 => "AuxiliaryDigitalTraces",
        2030 => "AuxiliaryAnalogTraces",
        2031 => "FSPhot",
        2032 => "PixelTriggerTimes",
        2033 => "PixelMonitoring",
        2034 => "CalibrationPhotoelectrons",
        t if tracking_tel_id(t).is_some() => "TrackingPosition",
        t if telescope_event_tel_id(t).is_some() => "TelescopeEvent",
        _ => "unknown",
    }
}

/// Telescope id encoded in a TrackingPosition type (`2100 + id % 100 + 1000 * (id / 100)`).
pub fn tracking_tel_id(object_type: u16) -> Option<u16> {
    tel_id_from_type(object_type, 2100)
}

/// Telescope id encoded in a TelescopeEvent type (`2200 + id % 100 + 1000 * (id / 100)`).
pub fn telescope_event_tel_id(object_type: u16) -> Option<u16> {
    tel_id_from_type(object_type, 2200)
}

fn tel_id_from_type(object_type: u16, base: u16) -> Option<u16> {
    let offset = object_type.checked_sub(base)?;
    (offset % 1000 < 100).then(|| 100 * (offset / 1000) + offset % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telescope_ids_from_types() {
        assert_eq!(telescope_event_tel_id(2205), Some(5));
        assert_eq!(telescope_event_tel_id(3205), Some(105));
        assert_eq!(tracking_tel_id(2101), Some(1));
        assert_eq!(tracking_tel_id(2205), None);
        assert_eq!(telescope_event_tel_id(2013), None);
    }

    #[test]
    fn header_fields() {
        // type 2013, version 3, extension flag clear; id 7; length 5, only-sub-objects set.
        let type_word: u32 = 2013 | (3 << 20);
        let length_word: u32 = 5 | (1 << 30);
        let mut data = Vec::new();
        data.extend_from_slice(&type_word.to_le_bytes());
        data.extend_from_slice(&7i32.to_le_bytes());
        data.extend_from_slice(&length_word.to_le_bytes());
        let (h, size) = ObjectHeader::parse(&data, false).expect("header");
        assert_eq!(size, 12);
        assert_eq!((h.object_type, h.version, h.id, h.length), (2013, 3, 7, 5));
        assert!(h.only_sub_objects && !h.extended && !h.user_flag);
    }
}
