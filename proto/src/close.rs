//! Close frame rules (RFC 6455 §5.5.1, §7.4) and the bounded `code` metric label. No I/O.

pub use super::close_code::CloseCode;
use super::violation::Violation;

/// Codes a close frame may carry on the wire: 1000-1003, 1007-1014 (1012-1014 are in the IANA
/// registry), 3000-4999. 1004-1006 and 1015 are reserved and never sent.
pub fn is_valid_wire_code(code: u16) -> bool {
    CloseCode::new(code).is_valid_on_wire()
}

/// Validates an unmasked close payload: empty, or a valid code followed by a UTF-8 reason.
pub fn parse_close_payload(payload: &[u8]) -> Result<Option<u16>, Violation> {
    match payload {
        [] => Ok(None),
        [_] => Err(Violation::BadClose),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_wire_code(code) {
                return Err(Violation::BadClose);
            }
            std::str::from_utf8(reason).map_err(|_| Violation::InvalidUtf8)?;
            Ok(Some(code))
        }
    }
}

/// Every `code` label a counted close frame can get: the valid wire codes by class, and `1005` for an
/// empty close (a close frame with any other code is a violation, not a close).
pub const RECEIVED_CODE_LABELS: [&str; 15] = [
    "1000", "1001", "1002", "1003", "1005", "1007", "1008", "1009", "1010", "1011", "1012", "1013",
    "1014", "3xxx", "4xxx",
];

/// The `code` label of `wsgate_ws_closes_total`. An empty close frame is labelled `1005`, RFC 6455's
/// "no status received" pseudo-code (`CloseCode::NO_STATUS`).
pub fn code_label(code: u16) -> &'static str {
    const KNOWN: [&str; 16] = [
        "1000", "1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008", "1009", "1010",
        "1011", "1012", "1013", "1014", "1015",
    ];
    match code {
        1000..=1015 => KNOWN[usize::from(code - 1000)],
        3000..=3999 => "3xxx",
        4000..=4999 => "4xxx",
        _ => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes_by_class() {
        for code in 0..=6000u16 {
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(is_valid_wire_code(code), valid, "{code}");
        }
        assert!(!is_valid_wire_code(u16::MAX));
    }

    #[test]
    fn payloads() {
        assert_eq!(parse_close_payload(&[]), Ok(None));
        assert_eq!(parse_close_payload(&[0x03]), Err(Violation::BadClose));
        assert_eq!(
            parse_close_payload(&CloseCode::NORMAL.to_be_bytes()),
            Ok(Some(CloseCode::NORMAL.as_u16()))
        );
        assert_eq!(parse_close_payload(b"\x0b\xb8bye"), Ok(Some(3000)));
        assert_eq!(parse_close_payload(&[0x13, 0x87]), Ok(Some(4999)));
        for bad in [999u16, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            assert_eq!(
                parse_close_payload(&bad.to_be_bytes()),
                Err(Violation::BadClose),
                "{bad}"
            );
        }
        assert_eq!(
            parse_close_payload(&[0x03, 0xE8, 0xFF]),
            Err(Violation::InvalidUtf8)
        );
    }

    #[test]
    fn received_code_labels_are_exactly_what_valid_closes_get() {
        let mut produced: Vec<&str> = (0..=u16::MAX)
            .filter(|&code| is_valid_wire_code(code))
            .map(code_label)
            .collect();
        produced.push("1005");
        produced.sort_unstable();
        produced.dedup();
        let mut listed = RECEIVED_CODE_LABELS.to_vec();
        listed.sort_unstable();
        assert_eq!(produced, listed);
    }

    #[test]
    fn labels() {
        assert_eq!(code_label(1000), "1000");
        assert_eq!(code_label(1015), "1015");
        assert_eq!(code_label(3001), "3xxx");
        assert_eq!(code_label(4999), "4xxx");
        assert_eq!(code_label(999), "invalid");
        assert_eq!(code_label(2000), "invalid");
    }
}
