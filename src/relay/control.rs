//! Control frames that wsgate writes itself (pongs, closes): built on the stack, masked toward the
//! upstream with a fresh random key (RFC 6455 §5.3), unmasked toward the client.

#[cfg(test)]
use wsgate_proto::close::CloseCode;
use wsgate_proto::frame::{encode_control, OpCode};
use wsgate_proto::tracker::Sender;

/// Why wsgate closes a tunnel, said in the close frame's reason text (RFC 6455 §5.5.1); most of
/// its closes carry the code alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CloseReason {
    None = 0,
    TokenExpired = 1,
    RateLimited = 2,
    MaxDuration = 3,
    /// Asked for through the admin API, with a reason text of the operator's (kept by the tunnel).
    Admin = 4,
}

impl CloseReason {
    pub fn text(self) -> &'static str {
        match self {
            CloseReason::None => "",
            CloseReason::TokenExpired => "token expired",
            CloseReason::RateLimited => "rate limit exceeded",
            CloseReason::MaxDuration => "max duration",
            CloseReason::Admin => "",
        }
    }

    pub fn from_u8(value: u8) -> Self {
        match value {
            1 => CloseReason::TokenExpired,
            2 => CloseReason::RateLimited,
            3 => CloseReason::MaxDuration,
            4 => CloseReason::Admin,
            _ => CloseReason::None,
        }
    }
}

/// The longest close reason: a close frame's payload is 125 bytes, two of them the code.
pub const MAX_REASON_LEN: usize = 123;

/// A complete control frame ready to write.
pub struct ControlFrame {
    bytes: [u8; 131],
    len: usize,
}

impl ControlFrame {
    /// A frame for the peer that is `receiver`.
    pub fn new(opcode: OpCode, payload: &[u8], receiver: Sender) -> Self {
        let mask = match receiver {
            Sender::Upstream => Some(rand::random::<[u8; 4]>()),
            Sender::Client => None,
        };
        let mut bytes = [0u8; 131];
        let len = encode_control(opcode, payload, mask, &mut bytes);
        ControlFrame { bytes, len }
    }

    /// A close frame; `reason` is cut to the `MAX_REASON_LEN` bytes a close payload has room for.
    pub fn close(code: u16, reason: &str, receiver: Sender) -> Self {
        let mut payload = [0u8; 125];
        payload[..2].copy_from_slice(&code.to_be_bytes());
        let text = &reason.as_bytes()[..reason.len().min(MAX_REASON_LEN)];
        payload[2..2 + text.len()].copy_from_slice(text);
        Self::new(OpCode::Close, &payload[..2 + text.len()], receiver)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_toward_client_is_unmasked() {
        let f = ControlFrame::close(CloseCode::PROTOCOL_ERROR.as_u16(), "", Sender::Client);
        assert_eq!(f.as_bytes(), &[0x88, 0x02, 0x03, 0xEA]);
    }

    #[test]
    fn close_toward_upstream_is_masked() {
        let f = ControlFrame::close(CloseCode::GOING_AWAY.as_u16(), "", Sender::Upstream);
        let b = f.as_bytes();
        assert_eq!(b.len(), 8);
        assert_eq!(b[0], 0x88);
        assert_eq!(b[1], 0x82);
        let code = [b[6] ^ b[2], b[7] ^ b[3]];
        assert_eq!(u16::from_be_bytes(code), CloseCode::GOING_AWAY.as_u16());
    }

    #[test]
    fn a_close_carries_its_reason_text() {
        for reason in [
            CloseReason::TokenExpired,
            CloseReason::RateLimited,
            CloseReason::MaxDuration,
        ] {
            assert_eq!(CloseReason::from_u8(reason as u8), reason);
            let f = ControlFrame::close(1008, reason.text(), Sender::Client);
            let text = reason.text().as_bytes();
            assert_eq!(f.as_bytes()[1] as usize, 2 + text.len());
            assert_eq!(&f.as_bytes()[2..4], &1008u16.to_be_bytes());
            assert_eq!(&f.as_bytes()[4..], text);
        }
    }
}
