//! The RFC 6455 §5.2 frame header: parse from a byte slice ("need more" consumes nothing) and encode.
//! Direction rules (masking, RSV bits) are the tracker's; this file knows only the wire format. No I/O.

use super::mask::apply_mask;
use super::violation::Violation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    pub const ALL: [OpCode; 6] = [
        OpCode::Continuation,
        OpCode::Text,
        OpCode::Binary,
        OpCode::Close,
        OpCode::Ping,
        OpCode::Pong,
    ];

    /// Opcodes 3-7 and 11-15 are reserved.
    pub fn from_wire(bits: u8) -> Option<OpCode> {
        match bits {
            0x0 => Some(OpCode::Continuation),
            0x1 => Some(OpCode::Text),
            0x2 => Some(OpCode::Binary),
            0x8 => Some(OpCode::Close),
            0x9 => Some(OpCode::Ping),
            0xA => Some(OpCode::Pong),
            _ => None,
        }
    }

    pub fn to_wire(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// The `opcode` metric label.
    pub fn label(self) -> &'static str {
        match self {
            OpCode::Continuation => "continuation",
            OpCode::Text => "text",
            OpCode::Binary => "binary",
            OpCode::Close => "close",
            OpCode::Ping => "ping",
            OpCode::Pong => "pong",
        }
    }

    /// Position in `ALL`, for arrays of per-opcode metric handles.
    pub fn index(self) -> usize {
        match self {
            OpCode::Continuation => 0,
            OpCode::Text => 1,
            OpCode::Binary => 2,
            OpCode::Close => 3,
            OpCode::Ping => 4,
            OpCode::Pong => 5,
        }
    }

    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

pub const RSV1: u8 = 0b100;
pub const MAX_CONTROL_PAYLOAD: u64 = 125;
pub const MAX_HEADER_LEN: usize = 14;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    /// RSV1..RSV3 as the low three bits (RSV1 = 0b100).
    pub rsv: u8,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
}

/// Parses a header from the front of `buf`: `Ok(None)` when more bytes are needed, else the header and
/// its length in bytes. Fails on reserved opcodes and on lengths RFC 6455 §5.2 forbids.
pub fn parse_header(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, Violation> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    let opcode = OpCode::from_wire(b0 & 0x0F).ok_or(Violation::ReservedOpcode)?;
    let masked = b1 & 0x80 != 0;
    let (payload_len, mut at) = match b1 & 0x7F {
        126 => {
            let Some(bytes) = buf.get(2..4) else {
                return Ok(None);
            };
            let len = u16::from_be_bytes([bytes[0], bytes[1]]);
            if len < 126 {
                return Err(Violation::NonMinimalLength);
            }
            (u64::from(len), 4)
        }
        127 => {
            let Some(bytes) = buf.get(2..10) else {
                return Ok(None);
            };
            let len = u64::from_be_bytes(bytes.try_into().expect("8 bytes"));
            if len >> 63 != 0 {
                return Err(Violation::BadLength);
            }
            if len <= u64::from(u16::MAX) {
                return Err(Violation::NonMinimalLength);
            }
            (len, 10)
        }
        len => (u64::from(len), 2),
    };
    let mask = if masked {
        let Some(key) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        at += 4;
        Some(key.try_into().expect("4 bytes"))
    } else {
        None
    };
    let header = FrameHeader {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0b111,
        opcode,
        mask,
        payload_len,
    };
    Ok(Some((header, at)))
}

/// Writes `header` with the minimal length encoding; returns its length.
pub fn encode_header(header: &FrameHeader, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
    out[0] = (u8::from(header.fin) << 7) | ((header.rsv & 0b111) << 4) | header.opcode.to_wire();
    let mask_bit = if header.mask.is_some() { 0x80 } else { 0 };
    let mut at = match header.payload_len {
        len @ 0..=125 => {
            out[1] = mask_bit | len as u8;
            2
        }
        len @ 126..=0xFFFF => {
            out[1] = mask_bit | 126;
            out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        len => {
            out[1] = mask_bit | 127;
            out[2..10].copy_from_slice(&len.to_be_bytes());
            10
        }
    };
    if let Some(key) = header.mask {
        out[at..at + 4].copy_from_slice(&key);
        at += 4;
    }
    at
}

/// Writes a whole control frame (FIN set) with `payload` (at most 125 bytes, longer is cut), masked
/// when a key is given. Returns its length.
pub fn encode_control(
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
    out: &mut [u8; 131],
) -> usize {
    let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD as usize)];
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let at = encode_header(&header, &mut head);
    out[..at].copy_from_slice(&head[..at]);
    let end = at + payload.len();
    out[at..end].copy_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[at..end], key, 0);
    }
    end
}

/// The opcode and unmasked payload of a whole control frame at the front of `frame`, copied into `out`
/// (the frame's bytes are left as they are). `None` when it is not a whole, well-formed control frame.
pub fn control_payload(frame: &[u8], out: &mut [u8; 125]) -> Option<(OpCode, usize)> {
    let (header, at) = parse_header(frame).ok()??;
    let len = usize::try_from(header.payload_len).ok()?;
    if !header.opcode.is_control() || len > out.len() || frame.len() < at + len {
        return None;
    }
    out[..len].copy_from_slice(&frame[at..at + len]);
    if let Some(key) = header.mask {
        apply_mask(&mut out[..len], key, 0);
    }
    Some((header.opcode, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(opcode: OpCode, len: u64, mask: Option<[u8; 4]>) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask,
            payload_len: len,
        }
    }

    #[test]
    fn length_boundaries_round_trip() {
        for (len, header_len) in [
            (0, 2),
            (125, 2),
            (126, 4),
            (127, 4),
            (65535, 4),
            (65536, 10),
            (1 << 40, 10),
        ] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let h = header(OpCode::Binary, len, mask);
                let mut out = [0u8; MAX_HEADER_LEN];
                let n = encode_header(&h, &mut out);
                let expected = header_len + if mask.is_some() { 4 } else { 0 };
                assert_eq!(n, expected, "len {len}");
                assert_eq!(parse_header(&out[..n]), Ok(Some((h, n))), "len {len}");
                for prefix in 0..n {
                    assert_eq!(
                        parse_header(&out[..prefix]),
                        Ok(None),
                        "len {len} prefix {prefix}"
                    );
                }
            }
        }
    }

    #[test]
    fn rfc_examples() {
        // RFC 6455 §5.7: unmasked "Hello" and masked "Hello".
        let (h, n) = parse_header(&[0x81, 0x05, 0x48]).unwrap().unwrap();
        assert_eq!(
            (h.opcode, h.fin, h.payload_len, h.mask, n),
            (OpCode::Text, true, 5, None, 2)
        );
        let (h, n) = parse_header(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d])
            .unwrap()
            .unwrap();
        assert_eq!((h.mask, n), (Some([0x37, 0xfa, 0x21, 0x3d]), 6));
        // A fragmented unmasked text message's first frame.
        let (h, _) = parse_header(&[0x01, 0x03]).unwrap().unwrap();
        assert!(!h.fin);
        // 256 bytes binary in a single unmasked frame.
        let (h, n) = parse_header(&[0x82, 0x7E, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((h.payload_len, n), (256, 4));
    }

    #[test]
    fn forbidden_lengths() {
        assert_eq!(
            parse_header(&[0x82, 126, 0, 5]),
            Err(Violation::NonMinimalLength)
        );
        assert_eq!(
            parse_header(&[0x82, 126, 0, 125]),
            Err(Violation::NonMinimalLength)
        );
        let mut long = [0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF];
        assert_eq!(parse_header(&long), Err(Violation::NonMinimalLength));
        long[2] = 0x80;
        assert_eq!(parse_header(&long), Err(Violation::BadLength));
    }

    #[test]
    fn reserved_opcodes_and_bits() {
        for op in (3..=7).chain(11..=15) {
            assert_eq!(
                parse_header(&[0x80 | op, 0]),
                Err(Violation::ReservedOpcode),
                "{op}"
            );
        }
        let (h, _) = parse_header(&[0xF2, 0x00]).unwrap().unwrap();
        assert_eq!(h.rsv, 0b111);
        let (h, _) = parse_header(&[0xC1, 0x00]).unwrap().unwrap();
        assert_eq!(h.rsv, RSV1);
    }

    #[test]
    fn control_payload_unmasks_a_copy() {
        let mut frame = [0u8; 131];
        let n = encode_control(OpCode::Pong, b"token", Some([9, 8, 7, 6]), &mut frame);
        let original = frame;
        let mut out = [0u8; 125];
        assert_eq!(
            control_payload(&frame[..n], &mut out),
            Some((OpCode::Pong, 5))
        );
        assert_eq!(&out[..5], b"token");
        assert_eq!(frame, original);
        assert_eq!(control_payload(&frame[..n - 1], &mut out), None);
        assert_eq!(control_payload(&[0x82, 0x00], &mut out), None);
    }

    #[test]
    fn control_frames() {
        let mut out = [0u8; 131];
        let n = encode_control(OpCode::Pong, b"hi", None, &mut out);
        assert_eq!(&out[..n], &[0x8A, 0x02, b'h', b'i']);
        let n = encode_control(OpCode::Close, &[0x03, 0xE8], Some([1, 2, 3, 4]), &mut out);
        assert_eq!(&out[..n], &[0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2]);
        let n = encode_control(OpCode::Ping, &[7u8; 200], None, &mut out);
        assert_eq!(n, 127);
    }
}
