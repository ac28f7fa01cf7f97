//! What a peer can do wrong after the upgrade, and the one mapping to its metric kind and close code.
//! No I/O.

use super::close_code::CloseCode;
use super::tracker::Sender;

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

/// The `kind` label of a data frame that follows its sender's close frame (dropped, no close).
pub const DATA_AFTER_CLOSE: &str = "data_after_close";

impl Violation {
    /// Every variant: the metrics create each kind's series at 0 when a route is loaded.
    pub const ALL: [Violation; 15] = [
        Violation::UnmaskedFrame,
        Violation::MaskedFrame,
        Violation::ReservedOpcode,
        Violation::ReservedBits,
        Violation::ControlTooLong,
        Violation::FragmentedControl,
        Violation::BadContinuation,
        Violation::UnfinishedMessage,
        Violation::InvalidUtf8,
        Violation::BadClose,
        Violation::NonMinimalLength,
        Violation::BadLength,
        Violation::FrameTooBig,
        Violation::MessageTooBig,
        Violation::BadCompression,
    ];

    /// Whether `sender` can commit it: the masking rules are one-sided (RFC 6455 §5.1).
    pub fn possible_from(self, sender: Sender) -> bool {
        match self {
            Violation::UnmaskedFrame => sender == Sender::Client,
            Violation::MaskedFrame => sender == Sender::Upstream,
            _ => true,
        }
    }

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
    pub fn close_code(self) -> CloseCode {
        match self {
            Violation::UnmaskedFrame => CloseCode::PROTOCOL_ERROR,
            Violation::MaskedFrame => CloseCode::PROTOCOL_ERROR,
            Violation::ReservedOpcode => CloseCode::PROTOCOL_ERROR,
            Violation::ReservedBits => CloseCode::PROTOCOL_ERROR,
            Violation::ControlTooLong => CloseCode::PROTOCOL_ERROR,
            Violation::FragmentedControl => CloseCode::PROTOCOL_ERROR,
            Violation::BadContinuation => CloseCode::PROTOCOL_ERROR,
            Violation::UnfinishedMessage => CloseCode::PROTOCOL_ERROR,
            Violation::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            Violation::BadClose => CloseCode::PROTOCOL_ERROR,
            Violation::NonMinimalLength => CloseCode::PROTOCOL_ERROR,
            Violation::BadLength => CloseCode::PROTOCOL_ERROR,
            Violation::FrameTooBig => CloseCode::TOO_BIG,
            Violation::MessageTooBig => CloseCode::TOO_BIG,
            Violation::BadCompression => CloseCode::INVALID_PAYLOAD,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Violation::{self, *};
    use crate::close_code::CloseCode;
    use crate::tracker::Sender;

    /// Fails to compile when a variant is added, so that `ALL` gets it too.
    fn position(v: Violation) -> usize {
        match v {
            UnmaskedFrame => 0,
            MaskedFrame => 1,
            ReservedOpcode => 2,
            ReservedBits => 3,
            ControlTooLong => 4,
            FragmentedControl => 5,
            BadContinuation => 6,
            UnfinishedMessage => 7,
            InvalidUtf8 => 8,
            BadClose => 9,
            NonMinimalLength => 10,
            BadLength => 11,
            FrameTooBig => 12,
            MessageTooBig => 13,
            BadCompression => 14,
        }
    }

    #[test]
    fn all_lists_every_variant_once() {
        for (i, v) in Violation::ALL.into_iter().enumerate() {
            assert_eq!(position(v), i, "{v:?}");
        }
    }

    #[test]
    fn masking_rules_are_one_sided() {
        assert!(UnmaskedFrame.possible_from(Sender::Client));
        assert!(!UnmaskedFrame.possible_from(Sender::Upstream));
        assert!(MaskedFrame.possible_from(Sender::Upstream));
        assert!(!MaskedFrame.possible_from(Sender::Client));
        assert!(
            InvalidUtf8.possible_from(Sender::Client)
                && InvalidUtf8.possible_from(Sender::Upstream)
        );
    }

    #[test]
    fn kinds_and_codes() {
        let table = [
            (UnmaskedFrame, "unmasked_frame", CloseCode::PROTOCOL_ERROR),
            (MaskedFrame, "masked_frame", CloseCode::PROTOCOL_ERROR),
            (ReservedOpcode, "reserved_opcode", CloseCode::PROTOCOL_ERROR),
            (ReservedBits, "reserved_bits", CloseCode::PROTOCOL_ERROR),
            (
                ControlTooLong,
                "control_too_long",
                CloseCode::PROTOCOL_ERROR,
            ),
            (
                FragmentedControl,
                "fragmented_control",
                CloseCode::PROTOCOL_ERROR,
            ),
            (
                BadContinuation,
                "bad_continuation",
                CloseCode::PROTOCOL_ERROR,
            ),
            (
                UnfinishedMessage,
                "bad_continuation",
                CloseCode::PROTOCOL_ERROR,
            ),
            (InvalidUtf8, "invalid_utf8", CloseCode::INVALID_PAYLOAD),
            (BadClose, "bad_close", CloseCode::PROTOCOL_ERROR),
            (
                NonMinimalLength,
                "non_minimal_length",
                CloseCode::PROTOCOL_ERROR,
            ),
            (BadLength, "bad_length", CloseCode::PROTOCOL_ERROR),
            (FrameTooBig, "frame_too_big", CloseCode::TOO_BIG),
            (MessageTooBig, "message_too_big", CloseCode::TOO_BIG),
            (
                BadCompression,
                "bad_compression",
                CloseCode::INVALID_PAYLOAD,
            ),
        ];
        for (violation, kind, code) in table {
            assert_eq!(violation.kind(), kind, "{violation:?}");
            assert_eq!(violation.close_code(), code, "{violation:?}");
        }
    }
}
