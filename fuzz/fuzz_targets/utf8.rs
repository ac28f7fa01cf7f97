//! The streaming UTF-8 validator, fed the input split at two points, agrees with std::str::from_utf8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsgate_proto::utf8::Utf8Validator;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, input)) = data.split_first() else {
        return;
    };
    let first = usize::from(cut) % (input.len() + 1);
    let second = first + (input.len() - first) / 2;
    let mut v = Utf8Validator::new();
    let streamed = v.feed(&input[..first]).is_ok()
        && v.feed(&input[first..second]).is_ok()
        && v.feed(&input[second..]).is_ok()
        && v.finish().is_ok();
    assert_eq!(
        streamed,
        std::str::from_utf8(input).is_ok(),
        "{input:x?} split at {first},{second}"
    );
});
