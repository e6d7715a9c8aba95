//! Protobuf wire primitives: varints, tags and length-delimited fields, read from a byte slice
//! with errors that name the byte offset, and written the way gogo-protobuf writes them.
//! Hot path: every protobuf read and write goes through here (benches/codec.rs).

use crate::error::CodecError;

pub const WIRE_VARINT: u8 = 0;
pub const WIRE_FIXED64: u8 = 1;
pub const WIRE_LEN: u8 = 2;
pub const WIRE_FIXED32: u8 = 5;

/// One field occurrence as read off the wire.
#[derive(Debug, Clone, Copy)]
pub enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Len(&'a [u8]),
}

/// A cursor over protobuf bytes. `base` is the offset of `buf` within the outermost input, so
/// errors point at the byte where the problem is.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    #[inline]
    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Absolute offset of the next byte.
    #[inline]
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    #[inline]
    pub fn varint(&mut self) -> Result<u64, CodecError> {
        // Most varints (tags, lengths, small numbers) are one byte.
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        self.varint_slow()
    }

    fn varint_slow(&mut self) -> Result<u64, CodecError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(CodecError::truncated(self.base + start, "varint"));
            };
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(CodecError::at(
                    self.base + start,
                    "varint overflows 64 bits",
                ));
            }
            value |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(CodecError::at(
            self.base + start,
            "varint longer than 10 bytes",
        ))
    }

    /// Reads one field: its number and value. Groups (wire types 3, 4) are refused, as
    /// Kubernetes never writes them.
    #[inline]
    pub fn field(&mut self) -> Result<(u32, WireValue<'a>, usize), CodecError> {
        let at = self.offset();
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(CodecError::at(at, format!("invalid field number {number}")));
        }
        let number = number as u32;
        let value = match (key & 7) as u8 {
            WIRE_VARINT => WireValue::Varint(self.varint()?),
            WIRE_FIXED64 => WireValue::Fixed64(u64::from_le_bytes(self.take_array::<8>()?)),
            WIRE_FIXED32 => WireValue::Fixed32(u32::from_le_bytes(self.take_array::<4>()?)),
            WIRE_LEN => {
                let len_at = self.offset();
                let len = self.varint()?;
                let remaining = (self.buf.len() - self.pos) as u64;
                if len > remaining {
                    return Err(CodecError::truncated(
                        len_at,
                        &format!("field {number} (length {len}, {remaining} bytes left)"),
                    ));
                }
                let s = &self.buf[self.pos..self.pos + len as usize];
                self.pos += len as usize;
                WireValue::Len(s)
            }
            w => {
                return Err(CodecError::at(
                    at,
                    format!("field {number} has unsupported wire type {w}"),
                ));
            }
        };
        Ok((number, value, at))
    }

    /// Reads a little-endian fixed-width value (packed fixed32/fixed64 elements).
    pub fn fixed(&mut self, width: usize) -> Result<WireValue<'a>, CodecError> {
        Ok(if width == 8 {
            WireValue::Fixed64(u64::from_le_bytes(self.take_array::<8>()?))
        } else {
            WireValue::Fixed32(u32::from_le_bytes(self.take_array::<4>()?))
        })
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let Some(s) = self.buf.get(self.pos..self.pos + N) else {
            return Err(CodecError::truncated(self.offset(), "fixed-width field"));
        };
        self.pos += N;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
}

/// Offset of `inner` (a sub-slice of `outer`) within `outer`.
#[inline]
pub fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    inner.as_ptr() as usize - outer.as_ptr() as usize
}

#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
pub fn varint_len(v: u64) -> usize {
    // 1 + floor(bits / 7), with 0 taking one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

#[inline]
pub fn put_tag(out: &mut Vec<u8>, number: u32, wire: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire));
}

#[inline]
pub fn put_bytes_field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_tag(out, number, WIRE_LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Starts a length-delimited field whose length is not yet known; finish with [`end_len`].
/// One byte is reserved for the length; a longer length shifts the body once.
#[inline]
pub fn begin_len(out: &mut Vec<u8>, number: u32) -> usize {
    put_tag(out, number, WIRE_LEN);
    out.push(0);
    out.len()
}

#[inline]
pub fn end_len(out: &mut Vec<u8>, body_start: usize) {
    let len = out.len() - body_start;
    if len < 0x80 {
        out[body_start - 1] = len as u8;
        return;
    }
    let n = varint_len(len as u64);
    let extra = n - 1;
    out.resize(out.len() + extra, 0);
    out.copy_within(body_start..body_start + len, body_start + extra);
    let mut v = len as u64;
    for i in 0..n {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        out[body_start - 1 + i] = if i + 1 < n { b | 0x80 } else { b };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_report_truncation() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            assert_eq!(Reader::new(&out, 0).varint().unwrap(), v);
        }
        let err = Reader::new(&[0x80, 0x80], 10).varint().unwrap_err();
        assert!(err.to_string().contains("byte 10"), "{err}");
    }

    #[test]
    fn deferred_lengths_shift_long_bodies() {
        for len in [0usize, 1, 127, 128, 20_000] {
            let mut out = vec![0xAA];
            let start = begin_len(&mut out, 3);
            out.extend(std::iter::repeat_n(7u8, len));
            end_len(&mut out, start);
            let mut r = Reader::new(&out[1..], 1);
            let (n, v, _) = r.field().unwrap();
            assert_eq!(n, 3);
            match v {
                WireValue::Len(b) => assert!(b.len() == len && b.iter().all(|&x| x == 7)),
                _ => panic!("wrong wire type"),
            }
            assert!(r.at_end());
        }
    }

    #[test]
    fn a_length_past_the_end_is_an_error() {
        let err = Reader::new(&[0x0a, 0x05, 1, 2], 0).field().unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
