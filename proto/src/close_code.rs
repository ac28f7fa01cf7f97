//! `CloseCode`: the status code of a close frame (RFC 6455 §7.4), with the registered codes by name.

use std::fmt;

/// A close frame's status code: any `u16` as read off the wire, with names for the registered ones.
/// Two bytes big-endian on the wire, exactly as a bare `u16`.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: an endpoint is going away (shutdown, a dead or idle peer).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: a protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED: CloseCode = CloseCode(1003);
    /// 1005: no status code present; never on the wire, the label of an empty close.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: closed without a close frame; never on the wire.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: message data inconsistent with its type (bad UTF-8, bad compressed data).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a policy was violated.
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a frame or message too big to process.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN: CloseCode = CloseCode(1013);
    /// 1014: a gateway got an invalid response from upstream (IANA registry).
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);

    pub const fn new(code: u16) -> CloseCode {
        CloseCode(code)
    }

    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether a close frame may carry it: 1000-1003, 1007-1014, 3000-4999. 1004-1006 and 1015 are
    /// reserved and never sent; 0-999 and 5000 up are not used.
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// The two bytes a close payload starts with.
    pub const fn to_be_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::CloseCode;

    #[test]
    fn named_codes_are_their_rfc_numbers() {
        let table = [
            (CloseCode::NORMAL, 1000),
            (CloseCode::GOING_AWAY, 1001),
            (CloseCode::PROTOCOL_ERROR, 1002),
            (CloseCode::UNSUPPORTED, 1003),
            (CloseCode::NO_STATUS, 1005),
            (CloseCode::ABNORMAL, 1006),
            (CloseCode::INVALID_PAYLOAD, 1007),
            (CloseCode::POLICY, 1008),
            (CloseCode::TOO_BIG, 1009),
            (CloseCode::EXTENSION, 1010),
            (CloseCode::INTERNAL, 1011),
            (CloseCode::RESTART, 1012),
            (CloseCode::TRY_AGAIN, 1013),
            (CloseCode::BAD_GATEWAY, 1014),
        ];
        for (code, number) in table {
            assert_eq!(code.as_u16(), number);
            assert_eq!(u16::from(code), number);
            assert_eq!(CloseCode::from(number), code);
            assert_eq!(code.to_be_bytes(), number.to_be_bytes());
            assert_eq!(code.to_string(), number.to_string());
            let pseudo = matches!(number, 1005 | 1006);
            assert_eq!(code.is_valid_on_wire(), !pseudo, "{code}");
        }
    }

    #[test]
    fn wire_validity_by_class() {
        for number in 0..=u16::MAX {
            let valid = matches!(number, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(CloseCode::new(number).is_valid_on_wire(), valid, "{number}");
        }
    }

    #[test]
    fn same_size_as_u16() {
        assert_eq!(std::mem::size_of::<CloseCode>(), 2);
    }
}
