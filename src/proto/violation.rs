//! What a peer can do wrong after the upgrade, and the one mapping to its metric kind and close code.
//! No I/O.

/// A broken RFC 6455 rule, found in the frames of one sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("client frame is not masked (RFC 6455 §5.1)")]
    UnmaskedFrame,
    #[error("upstream frame is masked (RFC 6455 §5.1)")]
    MaskedFrame,
    #[error("reserved opcode (RFC 6455 §5.2)")]
    ReservedOpcode,
    #[error("RSV bit set without a negotiated extension (RFC 6455 §5.2)")]
    ReservedBits,
    #[error("control frame payload over 125 bytes (RFC 6455 §5.5)")]
    ControlTooLong,
    #[error("fragmented control frame (RFC 6455 §5.5)")]
    FragmentedControl,
    #[error("continuation frame with no message open (RFC 6455 §5.4)")]
    BadContinuation,
    #[error("new data frame before the previous message's FIN (RFC 6455 §5.4)")]
    UnfinishedMessage,
    #[error("invalid UTF-8 in a text message or close reason (RFC 6455 §8.1)")]
    InvalidUtf8,
    #[error("invalid close frame payload or code (RFC 6455 §5.5.1, §7.4)")]
    BadClose,
    #[error("payload length not in its minimal encoding (RFC 6455 §5.2)")]
    NonMinimalLength,
    #[error("64-bit payload length with the most significant bit set (RFC 6455 §5.2)")]
    BadLength,
    #[error("frame payload over max_frame_size")]
    FrameTooBig,
    #[error("message over max_message_size")]
    MessageTooBig,
    #[error("compressed data that does not inflate (RFC 7692 §7.2.2)")]
    BadCompression,
}

impl Violation {
    /// The `kind` label of `wsgate_ws_protocol_violations_total`.
    pub fn kind(self) -> &'static str {
        match self {
            Violation::UnmaskedFrame => "unmasked_frame",
            Violation::MaskedFrame => "masked_frame",
            Violation::ReservedOpcode => "reserved_opcode",
            Violation::ReservedBits => "reserved_bits",
            Violation::ControlTooLong => "control_too_long",
            Violation::FragmentedControl => "fragmented_control",
            Violation::BadContinuation => "bad_continuation",
            Violation::UnfinishedMessage => "bad_continuation",
            Violation::InvalidUtf8 => "invalid_utf8",
            Violation::BadClose => "bad_close",
            Violation::NonMinimalLength => "non_minimal_length",
            Violation::BadLength => "bad_length",
            Violation::FrameTooBig => "frame_too_big",
            Violation::MessageTooBig => "message_too_big",
            Violation::BadCompression => "bad_compression",
        }
    }

    /// The close code the sender gets (RFC 6455 §7.4.1).
    pub fn close_code(self) -> u16 {
        match self {
            Violation::UnmaskedFrame => 1002,
            Violation::MaskedFrame => 1002,
            Violation::ReservedOpcode => 1002,
            Violation::ReservedBits => 1002,
            Violation::ControlTooLong => 1002,
            Violation::FragmentedControl => 1002,
            Violation::BadContinuation => 1002,
            Violation::UnfinishedMessage => 1002,
            Violation::InvalidUtf8 => 1007,
            Violation::BadClose => 1002,
            Violation::NonMinimalLength => 1002,
            Violation::BadLength => 1002,
            Violation::FrameTooBig => 1009,
            Violation::MessageTooBig => 1009,
            Violation::BadCompression => 1007,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Violation::*;

    #[test]
    fn kinds_and_codes() {
        let table = [
            (UnmaskedFrame, "unmasked_frame", 1002),
            (MaskedFrame, "masked_frame", 1002),
            (ReservedOpcode, "reserved_opcode", 1002),
            (ReservedBits, "reserved_bits", 1002),
            (ControlTooLong, "control_too_long", 1002),
            (FragmentedControl, "fragmented_control", 1002),
            (BadContinuation, "bad_continuation", 1002),
            (UnfinishedMessage, "bad_continuation", 1002),
            (InvalidUtf8, "invalid_utf8", 1007),
            (BadClose, "bad_close", 1002),
            (NonMinimalLength, "non_minimal_length", 1002),
            (BadLength, "bad_length", 1002),
            (FrameTooBig, "frame_too_big", 1009),
            (MessageTooBig, "message_too_big", 1009),
            (BadCompression, "bad_compression", 1007),
        ];
        for (violation, kind, code) in table {
            assert_eq!(violation.kind(), kind, "{violation:?}");
            assert_eq!(violation.close_code(), code, "{violation:?}");
        }
    }
}
