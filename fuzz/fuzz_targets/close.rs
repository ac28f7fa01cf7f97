//! Close payload validation agrees with the rules written out plainly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsgate_proto::close::{is_valid_wire_code, parse_close_payload};

fuzz_target!(|payload: &[u8]| {
    let expected = match payload {
        [] => true,
        [_] => false,
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
                && std::str::from_utf8(reason).is_ok()
        }
    };
    assert_eq!(parse_close_payload(payload).is_ok(), expected);
    if let [hi, lo, ..] = payload {
        let code = u16::from_be_bytes([*hi, *lo]);
        let _ = is_valid_wire_code(code);
    }
});
