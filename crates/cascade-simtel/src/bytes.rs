//! Bounds-checked reading of EventIO payload fields: fixed-size integers and floats in the
//! file's byte order, and the variable-length integer encodings sim_telarray uses.
//!
//! The variable-length integers follow eventio's `get_count`/`get_scount` (pyeventio
//! `var_int.pyx`): the number of leading one bits of the first byte gives the number of
//! extra bytes (0..=8); the remaining bits of the first byte and the extra bytes form a
//! big-endian unsigned value. Signed values ("scount") are zig-zag coded: an odd value `v`
//! means `-(v >> 1) - 1`, an even one `v >> 1`. Arrays of ADC samples and sums are stored as
//! differences of consecutive values, each a signed varint
//! (`get_adcsample_differential` / `get_vector_of_uint32_scount_differential`).
//!
//! Every array read first checks that the payload holds at least one byte per element, so a
//! corrupt count can never make us allocate more than the object's own length.

use crate::error::{DecodeError, DecodeErrorKind};

/// Reads fields from one object's payload.
#[derive(Debug, Clone)]
pub struct ByteReader<'a> {
    data: &'a [u8],
    pos: usize,
    big_endian: bool,
    object_type: u16,
}

/// Result type of the field readers.
pub type DecodeResult<T> = Result<T, DecodeError>;

impl<'a> ByteReader<'a> {
    /// A reader over `data`, the payload of an object of type `object_type`.
    pub fn new(data: &'a [u8], big_endian: bool, object_type: u16) -> Self {
        Self {
            data,
            pos: 0,
            big_endian,
            object_type,
        }
    }

    /// Current position (bytes from the start of the payload).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// The unread part of the payload.
    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    /// An error of kind `kind` at the current position.
    pub fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            offset: self.pos,
            object_type: self.object_type,
            kind,
        }
    }

    /// An "invalid value" error at the current position.
    pub fn invalid(&self, what: impl Into<String>) -> DecodeError {
        self.error(DecodeErrorKind::Invalid(what.into()))
    }

    /// An "unsupported" error at the current position.
    pub fn unsupported(&self, what: impl Into<String>) -> DecodeError {
        self.error(DecodeErrorKind::Unsupported(what.into()))
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> DecodeResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.error(DecodeErrorKind::Truncated(what)));
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize, what: &'static str) -> DecodeResult<()> {
        self.bytes(n, what).map(|_| ())
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> DecodeResult<[u8; N]> {
        let bytes = self.bytes(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        if self.big_endian {
            out.reverse();
        }
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> DecodeResult<u8> {
        Ok(self.bytes(1, what)?[0])
    }

    /// A 16-bit signed integer ("short").
    pub fn i16(&mut self, what: &'static str) -> DecodeResult<i16> {
        Ok(i16::from_le_bytes(self.array(what)?))
    }

    /// A 16-bit unsigned integer.
    pub fn u16(&mut self, what: &'static str) -> DecodeResult<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// A 32-bit signed integer ("int"/"long").
    pub fn i32(&mut self, what: &'static str) -> DecodeResult<i32> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    /// A 32-bit unsigned integer.
    pub fn u32(&mut self, what: &'static str) -> DecodeResult<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// A 32-bit float ("real").
    pub fn f32(&mut self, what: &'static str) -> DecodeResult<f32> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }

    /// An IEEE 754 half-precision float ("sfloat"), widened to f32.
    pub fn f16(&mut self, what: &'static str) -> DecodeResult<f32> {
        Ok(half_to_f32(self.u16(what)?))
    }

    /// A count that must be non-negative and fit `elem_size`-byte elements in the rest of
    /// the payload; protects allocations against corrupt counts.
    pub fn check_count(
        &self,
        count: i64,
        elem_size: usize,
        what: &'static str,
    ) -> DecodeResult<usize> {
        let count = usize::try_from(count)
            .map_err(|_| self.invalid(format!("negative count {count} for {what}")))?;
        if count.saturating_mul(elem_size.max(1)) > self.remaining() {
            return Err(self.error(DecodeErrorKind::Truncated(what)));
        }
        Ok(count)
    }

    /// A dimension (number of gains, pixels, samples...) that must lie in `0..=max`; the
    /// limits stop corrupt headers from sizing huge output arrays that the payload need
    /// not back byte for byte (zero-suppressed data).
    pub fn dimension(&self, value: i64, max: usize, what: &'static str) -> DecodeResult<usize> {
        usize::try_from(value)
            .ok()
            .filter(|&v| v <= max)
            .ok_or_else(|| self.invalid(format!("{what} = {value} outside 0..={max}")))
    }

    /// `n` 16-bit signed integers.
    pub fn i16_vec(&mut self, n: usize, what: &'static str) -> DecodeResult<Vec<i16>> {
        self.vec_of(n, what, i16::from_le_bytes)
    }

    /// `n` 32-bit signed integers.
    pub fn i32_vec(&mut self, n: usize, what: &'static str) -> DecodeResult<Vec<i32>> {
        self.vec_of(n, what, i32::from_le_bytes)
    }

    /// `n` 32-bit floats.
    pub fn f32_vec(&mut self, n: usize, what: &'static str) -> DecodeResult<Vec<f32>> {
        self.vec_of(n, what, f32::from_le_bytes)
    }

    /// `n` values of `N` bytes each, in the file's byte order, made by `from_le_bytes`
    /// from their little-endian bytes (as [`Self::array`] gives them).
    fn vec_of<T, const N: usize>(
        &mut self,
        n: usize,
        what: &'static str,
        from_le_bytes: fn([u8; N]) -> T,
    ) -> DecodeResult<Vec<T>> {
        let bytes = self.bytes(n.saturating_mul(N), what)?;
        let big_endian = self.big_endian;
        Ok(bytes
            .as_chunks::<N>()
            .0
            .iter()
            .map(|&value| {
                let mut value = value;
                if big_endian {
                    value.reverse();
                }
                from_le_bytes(value)
            })
            .collect())
    }

    /// An unsigned variable-length integer (`get_count`).
    pub fn uvarint(&mut self, what: &'static str) -> DecodeResult<u64> {
        match decode_uvarint(&self.data[self.pos..]) {
            Some((value, len)) => {
                self.pos += len;
                Ok(value)
            }
            None => Err(self.error(DecodeErrorKind::Truncated(what))),
        }
    }

    /// A signed variable-length integer (`get_scount`).
    pub fn varint(&mut self, what: &'static str) -> DecodeResult<i64> {
        Ok(unzigzag(self.uvarint(what)?))
    }

    /// `n` signed variable-length integers.
    pub fn varint_vec(&mut self, n: usize, what: &'static str) -> DecodeResult<Vec<i64>> {
        self.check_count(n as i64, 1, what)?;
        (0..n).map(|_| self.varint(what)).collect()
    }

    /// `n` unsigned variable-length integers.
    pub fn uvarint_vec(&mut self, n: usize, what: &'static str) -> DecodeResult<Vec<u64>> {
        self.check_count(n as i64, 1, what)?;
        (0..n).map(|_| self.uvarint(what)).collect()
    }

    /// A string with an unsigned-varint length prefix (`get_var_string`).
    pub fn var_string(&mut self, what: &'static str) -> DecodeResult<String> {
        let len = self.uvarint(what)?;
        let len = self.check_count(i64::try_from(len).unwrap_or(i64::MAX), 1, what)?;
        let bytes = self.bytes(len, what)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    /// Decodes `out.len()` differentially coded values (signed varint differences, starting
    /// from 0) into `out`, truncating each running value to 16 bits as ctapipe's `uint16`
    /// waveforms do.
    pub fn differential_u16(&mut self, out: &mut [u16], what: &'static str) -> DecodeResult<()> {
        match decode_differential_u16(&self.data[self.pos..], out) {
            Some(len) => {
                self.pos += len;
                Ok(())
            }
            None => Err(self.error(DecodeErrorKind::Truncated(what))),
        }
    }

    /// Decodes `out.len()` differentially coded 32-bit values (starting from 0) into `out`.
    pub fn differential_u32(&mut self, out: &mut [u32], what: &'static str) -> DecodeResult<()> {
        let mut value: i64 = 0;
        for slot in out.iter_mut() {
            value = value.wrapping_add(self.varint(what)?);
            *slot = value as u32;
        }
        Ok(())
    }
}

/// Zig-zag decoding of a signed varint.
#[inline]
pub fn unzigzag(v: u64) -> i64 {
    if v & 1 == 1 {
        -((v >> 1) as i64) - 1
    } else {
        (v >> 1) as i64
    }
}

/// Decodes one unsigned varint from the start of `data`: (value, bytes used), or `None`
/// when `data` is too short.
#[inline]
pub fn decode_uvarint(data: &[u8]) -> Option<(u64, usize)> {
    let first = *data.first()?;
    let extra = first.leading_ones() as usize;
    if extra == 0 {
        return Some((u64::from(first), 1));
    }
    let len = extra + 1;
    let tail = data.get(1..len)?;
    // Bits of the first byte below the length marker (none for 8 and 9 byte codes).
    let mut value = if extra >= 7 {
        0
    } else {
        u64::from(first) & (0x7f >> extra)
    };
    for &b in tail {
        value = (value << 8) | u64::from(b);
    }
    Some((value, len))
}

/// Decodes `out.len()` differential values from `data` (the hot loop of ADC sample
/// decoding); returns the bytes used or `None` if `data` ends early.
///
/// Runs of one-byte codes (below 0x80: small sample-to-sample differences, the common case
/// after a waveform's first, absolute, value) are decoded in bulk: on x86-64 up to sixteen
/// at a time with SSE2 (widened to 16-bit lanes, un-zig-zagged, summed by a prefix sum of
/// three shifts and additions), else up to eight from one 64-bit load; other codes one at
/// a time, with one- and two-byte codes inline. Only the low 16 bits of the running value
/// reach `out`, so it is kept modulo 2^16 across the paths.
#[inline]
#[allow(unsafe_code)] // the call of the SSE2 run decoder
fn decode_differential_u16(data: &[u8], out: &mut [u16]) -> Option<usize> {
    const TOP_BITS: u64 = 0x8080_8080_8080_8080;
    let mut pos = 0usize;
    let mut value: i32 = 0;
    let mut done = 0;
    while done < out.len() {
        let rest = &mut out[done..];
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if let Some(codes) = data.get(pos..pos + 16)
            // SAFETY: the target has SSE2 (`cfg`), as every x86-64 CPU.
            && let Some((n, last)) = unsafe { sse2::one_byte_run(codes, value as u16, rest) }
        {
            value = i32::from(last);
            pos += n;
            done += n;
            continue;
        }
        let run = match data.get(pos..pos + 8) {
            Some(chunk) => {
                let word = u64::from_le_bytes([
                    chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
                ]);
                // The leading bytes below 0x80 (eight when none has its top bit set).
                let ones = (word & TOP_BITS).trailing_zeros() as usize / 8;
                Some((word, ones.min(rest.len())))
            }
            None => None,
        };
        match run {
            Some((word, n)) if n > 0 => {
                for (k, slot) in rest[..n].iter_mut().enumerate() {
                    let v = ((word >> (8 * k)) & 0x7f) as i32;
                    value = value.wrapping_add((v >> 1) ^ -(v & 1));
                    *slot = value as u16;
                }
                pos += n;
                done += n;
            }
            _ => {
                pos = decode_codes(data, pos, &mut value, &mut rest[..1])?;
                done += 1;
            }
        }
    }
    Some(pos)
}

/// Runs of one-byte differential codes, up to sixteen at a time, with SSE2 (part of every
/// x86-64 CPU).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi16, _mm_and_si128, _mm_extract_epi16, _mm_loadu_si128,
        _mm_movemask_epi8, _mm_set1_epi16, _mm_setzero_si128, _mm_slli_si128, _mm_srli_epi16,
        _mm_storeu_si128, _mm_sub_epi16, _mm_unpackhi_epi8, _mm_unpacklo_epi8, _mm_xor_si128,
    };

    /// Shorter runs are left to the 64-bit path.
    const MIN_RUN: usize = 8;

    /// Decodes the run of one-byte codes (below 0x80) that `codes` (16 bytes) starts with,
    /// at most `out.len()` of them, into `out` after the running value `value`. Returns
    /// how many it decoded and the last value, or `None` (`out` untouched) for a run
    /// shorter than 8 or when `codes` is not 16 bytes long.
    #[inline]
    #[target_feature(enable = "sse2")]
    #[allow(unsafe_code)]
    pub(super) fn one_byte_run(codes: &[u8], value: u16, out: &mut [u16]) -> Option<(usize, u16)> {
        let codes: &[u8; 16] = codes.try_into().ok()?;
        // SAFETY: reads the 16 bytes of `codes`.
        let bytes = unsafe { _mm_loadu_si128(codes.as_ptr().cast()) };
        // Bit k is the top bit of byte k; a run ends at the first one.
        let top_bits = _mm_movemask_epi8(bytes) as u32 | 1 << 16;
        let n = (top_bits.trailing_zeros() as usize).min(out.len());
        if n < MIN_RUN {
            return None;
        }
        let zero = _mm_setzero_si128();
        let first = _mm_add_epi16(
            prefix_sum(unzigzag(_mm_unpacklo_epi8(bytes, zero))),
            _mm_set1_epi16(value as i16),
        );
        let carry = _mm_set1_epi16(_mm_extract_epi16::<7>(first) as i16);
        let second = _mm_add_epi16(prefix_sum(unzigzag(_mm_unpackhi_epi8(bytes, zero))), carry);
        // The values after the run are wrong (not one-byte codes) but are overwritten by
        // the codes that follow, so the 16 lanes are stored whole where `out` has room.
        let room = out.len().min(16);
        let out = &mut out[..room];
        let (head, tail) = out.split_at_mut(8);
        // SAFETY: `head` holds 8 `u16` (`n >= 8`).
        unsafe { _mm_storeu_si128(head.as_mut_ptr().cast(), first) };
        if let Ok(tail) = <&mut [u16; 8]>::try_from(&mut *tail) {
            // SAFETY: `tail` holds 8 `u16`.
            unsafe { _mm_storeu_si128(tail.as_mut_ptr().cast(), second) };
        } else {
            let mut lanes = [0u16; 8];
            // SAFETY: `lanes` holds 8 `u16`.
            unsafe { _mm_storeu_si128(lanes.as_mut_ptr().cast(), second) };
            for (slot, lane) in tail.iter_mut().zip(lanes) {
                *slot = lane;
            }
        }
        Some((n, out[n - 1]))
    }

    /// Zig-zag decoding of eight codes in 16-bit lanes: `(v >> 1) ^ -(v & 1)`.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn unzigzag(codes: __m128i) -> __m128i {
        let sign = _mm_sub_epi16(_mm_setzero_si128(), _mm_and_si128(codes, _mm_set1_epi16(1)));
        _mm_xor_si128(_mm_srli_epi16::<1>(codes), sign)
    }

    /// Inclusive prefix sums of eight 16-bit lanes (wrapping).
    #[inline]
    #[target_feature(enable = "sse2")]
    fn prefix_sum(lanes: __m128i) -> __m128i {
        let lanes = _mm_add_epi16(lanes, _mm_slli_si128::<2>(lanes));
        let lanes = _mm_add_epi16(lanes, _mm_slli_si128::<4>(lanes));
        _mm_add_epi16(lanes, _mm_slli_si128::<8>(lanes))
    }
}

/// Decodes one differential code per element of `out`, starting at `data[pos]`; returns
/// the new position.
#[inline(always)]
fn decode_codes(data: &[u8], mut pos: usize, value: &mut i32, out: &mut [u16]) -> Option<usize> {
    for slot in out.iter_mut() {
        let code = match data.get(pos..)? {
            [b0, ..] if *b0 < 0x80 => {
                pos += 1;
                u64::from(*b0)
            }
            [b0, b1, ..] if *b0 < 0xc0 => {
                pos += 2;
                (u64::from(*b0 & 0x3f) << 8) | u64::from(*b1)
            }
            rest => {
                let (code, len) = decode_uvarint(rest)?;
                pos += len;
                code
            }
        };
        *value = value.wrapping_add(unzigzag(code) as i32);
        *slot = *value as u16;
    }
    Some(pos)
}

/// Converts an IEEE 754 binary16 value to f32.
pub fn half_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exponent = u32::from((h >> 10) & 0x1f);
    let mantissa = u32::from(h & 0x3ff);
    let bits = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value = m * 2^-24.
            let value = m as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -value } else { value };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths_match_eventio() {
        assert_eq!(decode_uvarint(&[0x05]), Some((5, 1)));
        assert_eq!(decode_uvarint(&[0x81, 0x02]), Some((0x102, 2)));
        assert_eq!(decode_uvarint(&[0xc1, 0x02, 0x03]), Some((0x10203, 3)));
        assert_eq!(
            decode_uvarint(&[0xfe, 1, 2, 3, 4, 5, 6, 7]),
            Some((0x01020304050607, 8))
        );
        assert_eq!(
            decode_uvarint(&[0xff, 0, 0, 0, 0, 0, 0, 0, 9]),
            Some((9, 9))
        );
        assert_eq!(decode_uvarint(&[0x81]), None);
        assert_eq!(unzigzag(3), -2);
        assert_eq!(unzigzag(4), 2);
    }

    #[test]
    fn differential_decoding_accumulates() {
        // +3, -1, +200 (two-byte code), 0
        let data = [6u8, 1, 0x81, 0x90, 0];
        let mut out = [0u16; 4];
        assert_eq!(decode_differential_u16(&data, &mut out), Some(5));
        assert_eq!(out, [3, 2, 202, 202]);
        // Ten one-byte codes (fast path for the first eight) then a two-byte code.
        let data = [2u8, 2, 2, 2, 1, 1, 1, 1, 0, 4, 0x81, 0x90];
        let mut out = [0u16; 11];
        assert_eq!(decode_differential_u16(&data, &mut out), Some(12));
        assert_eq!(out, [1, 2, 3, 4, 3, 2, 1, 0, 0, 2, 202]);
    }

    #[test]
    fn vectors_follow_the_files_byte_order() {
        let little = [0x34u8, 0x12, 0xfe, 0xff, 0x00, 0x00, 0x80, 0x3f];
        let big = [0x12u8, 0x34, 0xff, 0xfe, 0x3f, 0x80, 0x00, 0x00];
        for (data, big_endian) in [(&little, false), (&big, true)] {
            let mut reader = ByteReader::new(data, big_endian, 0);
            assert_eq!(reader.i16_vec(2, "i16").unwrap(), [0x1234, -2]);
            assert_eq!(reader.f32_vec(1, "f32").unwrap(), [1.0]);
            assert_eq!(reader.remaining(), 0);
        }
        let mut reader = ByteReader::new(&big[..4], true, 0);
        assert_eq!(reader.i32_vec(1, "i32").unwrap(), [0x1234_fffe]);
        let mut reader = ByteReader::new(&big[..4], true, 0);
        assert!(reader.i32_vec(2, "i32").is_err());
    }

    /// The sim_telarray code of `value`: as many leading one bits in the first byte as
    /// bytes follow it (up to 3 here), then the value's bits, big-endian.
    fn encode_uvarint(value: u64) -> Vec<u8> {
        let extra = match value {
            0..0x80 => 0,
            0x80..0x4000 => 1,
            0x4000..0x20_0000 => 2,
            _ => 3,
        };
        let mut bytes: Vec<u8> = (0..=extra)
            .rev()
            .map(|k| (value >> (8 * k)) as u8)
            .collect();
        bytes[0] = (bytes[0] & (0x7f >> extra)) | !(0xff >> extra);
        bytes
    }

    /// Differences as `differential_u16` stores them: mostly small (one-byte codes), in
    /// runs long enough for the block decoders, with larger ones in between.
    fn differences() -> impl proptest::strategy::Strategy<Value = Vec<i32>> {
        use proptest::prelude::*;
        let difference = prop_oneof![
            8 => -64i32..64,
            1 => -8192i32..8192,
            1 => -0x0fff_ffffi32..0x0fff_ffff,
        ];
        prop::collection::vec(difference, 0..120)
    }

    proptest::proptest! {
        #[test]
        fn block_decoders_equal_code_by_code_decoding(
            differences in differences(),
            cut in 0usize..8,
        ) {
            let zigzag = |d: i32| ((d << 1) ^ (d >> 31)) as u32 as u64;
            let mut data: Vec<u8> =
                differences.iter().flat_map(|&d| encode_uvarint(zigzag(d))).collect();
            let mut expected = vec![0u16; differences.len()];
            let mut value = 0;
            let expected_len = decode_codes(&data, 0, &mut value, &mut expected);
            let mut sum = 0i32;
            for (&difference, &decoded) in differences.iter().zip(&expected) {
                sum = sum.wrapping_add(difference);
                proptest::prop_assert_eq!(decoded, sum as u16);
            }
            let mut decoded = vec![0u16; differences.len()];
            proptest::prop_assert_eq!(decode_differential_u16(&data, &mut decoded), expected_len);
            proptest::prop_assert_eq!(decoded, expected);
            // Truncated data is an error, never a panic or a wrong value.
            data.truncate(data.len().saturating_sub(cut));
            let mut decoded = vec![0u16; differences.len()];
            let truncated = decode_differential_u16(&data, &mut decoded);
            proptest::prop_assert!(cut == 0 || differences.is_empty() || truncated.is_none());
        }
    }

    #[test]
    fn half_floats() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x3555), 0.333_251_95);
        assert_eq!(half_to_f32(0x0001), 5.960_464_5e-8);
    }
}
