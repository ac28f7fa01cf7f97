//! Control frames that wsgate writes itself (pongs, closes): built on the stack, masked toward the
//! upstream with a fresh random key (RFC 6455 §5.3), unmasked toward the client.

#[cfg(test)]
use wsgate_proto::close::CloseCode;
use wsgate_proto::frame::{encode_control, OpCode};
use wsgate_proto::tracker::Sender;

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

    pub fn close(code: u16, receiver: Sender) -> Self {
        Self::new(OpCode::Close, &code.to_be_bytes(), receiver)
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
        let f = ControlFrame::close(CloseCode::PROTOCOL_ERROR.as_u16(), Sender::Client);
        assert_eq!(f.as_bytes(), &[0x88, 0x02, 0x03, 0xEA]);
    }

    #[test]
    fn close_toward_upstream_is_masked() {
        let f = ControlFrame::close(CloseCode::GOING_AWAY.as_u16(), Sender::Upstream);
        let b = f.as_bytes();
        assert_eq!(b.len(), 8);
        assert_eq!(b[0], 0x88);
        assert_eq!(b[1], 0x82);
        let code = [b[6] ^ b[2], b[7] ^ b[3]];
        assert_eq!(u16::from_be_bytes(code), CloseCode::GOING_AWAY.as_u16());
    }
}
