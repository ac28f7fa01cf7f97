//! Response heads and chunked bodies of the backend leg: `parse_response` never panics and a prefix
//! never disagrees with the whole (incomplete until the head ends, the same head after, the same
//! error if it fails early); the chunked decoder gives the same payload and the same end whether the
//! bytes come in one piece or in two.
#![no_main]

use http::Method;
use libfuzzer_sys::fuzz_target;
use wsgate_proto::head::*;

/// Prefixes checked one by one: all of them up to here, then a stride, so long inputs stay fast.
const EVERY_PREFIX: usize = 512;

fn same(
    a: &Result<Option<ResponseHead>, HeadError>,
    b: &Result<Option<ResponseHead>, HeadError>,
) -> bool {
    match (a, b) {
        (Ok(Some(a)), Ok(Some(b))) => {
            (a.len, a.status, a.version, &a.reason, &a.headers)
                == (b.len, b.status, b.version, &b.reason, &b.headers)
        }
        (Ok(None), Ok(None)) => true,
        (Err(a), Err(b)) => a == b,
        _ => false,
    }
}

fn check_head(data: &[u8], limits: HeadLimits) -> Option<usize> {
    let whole = parse_response(data, limits);
    let ends = (0..data.len().min(EVERY_PREFIX)).chain((EVERY_PREFIX..data.len()).step_by(97));
    for end in ends {
        let prefix = parse_response(&data[..end], limits);
        match (&whole, &prefix) {
            (_, Ok(None)) => {}
            // A prefix's error is the whole's error; a complete prefix is the whole's head.
            _ => assert!(
                same(&whole, &prefix),
                "prefix {end}: {prefix:?} vs {whole:?}"
            ),
        }
        if let Ok(Some(head)) = &whole {
            assert_eq!(
                prefix.is_ok_and(|p| p.is_none()),
                end < head.len,
                "prefix {end}"
            );
        }
    }
    let head = whole.ok()??;
    assert!(head.len <= data.len() && head.len <= limits.max_head_bytes);
    for method in [Method::GET, Method::HEAD, Method::CONNECT] {
        let _ = head.body(&method);
    }
    let _ = head.is_interim();
    Some(head.len)
}

/// The payload and where the body ended (or why it failed), feeding `input` cut at `cut`.
fn decode(input: &[u8], cut: usize) -> (Vec<u8>, Result<Option<usize>, ChunkError>) {
    let mut decoder = ChunkedDecoder::new();
    let mut payload = Vec::new();
    let mut at = 0;
    for stop in [cut, input.len()] {
        // Each step consumes a byte, ends a run of payload or ends the body: bounded.
        for _ in 0..=input.len() {
            if at == stop {
                break;
            }
            let step = match decoder.decode(&input[at..stop]) {
                Ok(step) => step,
                Err(error) => return (payload, Err(error)),
            };
            assert!(step.consumed <= stop - at);
            assert!(step.data.is_empty() || step.data.end == step.consumed);
            assert!(step.consumed > 0 || step.done);
            payload.extend_from_slice(&input[at..stop][step.data]);
            at += step.consumed;
            if step.done {
                return (payload, Ok(Some(at)));
            }
        }
    }
    (payload, Ok(None))
}

fuzz_target!(|data: &[u8]| {
    let tiny = HeadLimits {
        max_head_bytes: 64,
        max_headers: 2,
    };
    check_head(data, tiny);
    // The body is what follows a complete head, or the whole input when there is none.
    let body = &data[check_head(data, HeadLimits::default()).unwrap_or(0)..];
    let cut = match data {
        [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])) % (body.len() + 1),
        _ => 0,
    };
    let whole = decode(body, body.len());
    assert_eq!(decode(body, cut), whole, "cut at {cut}");
});
