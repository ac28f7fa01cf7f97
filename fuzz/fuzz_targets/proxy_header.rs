//! The PROXY protocol parser: never panics, and "need more" stays consistent as bytes are added.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsgate_proto::proxy_protocol::parse;

fuzz_target!(|data: &[u8]| {
    let whole = parse(data);
    if let Ok(Some((_, len))) = whole {
        assert!(len <= data.len());
        // Every longer prefix of a complete header gives the same header.
        for end in len..=data.len() {
            assert_eq!(parse(&data[..end]), whole);
        }
    }
    // Any prefix of an input that fails outright cannot be a complete header.
    if whole.is_err() {
        for end in 0..data.len().min(64) {
            assert!(!matches!(parse(&data[..end]), Ok(Some(_))));
        }
    }
});
