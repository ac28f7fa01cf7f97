//! Handshake validators over arbitrary header lists: they must never panic, and an accepted request
//! carries a 16-byte key whose Accept value the response validator accepts.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};
use libfuzzer_sys::fuzz_target;
use wsgate_proto::handshake::*;

fn headers(text: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in text.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        map.append(name, value);
    }
    map
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let request = headers(&data[..split]);
    let response = headers(data.get(split + 1..).unwrap_or_default());
    let allowed = vec!["chat.v1".to_owned()];
    let origins = vec!["https://a.example".to_owned()];
    let deflate = vec!["permessage-deflate".to_owned()];
    for policy in [
        RequestPolicy {
            allowed_origins: None,
            subprotocols: None,
            extensions: &[],
        },
        RequestPolicy {
            allowed_origins: Some(&origins),
            subprotocols: Some(&allowed),
            extensions: &deflate,
        },
    ] {
        let _ = is_websocket_upgrade(Version::HTTP_11, &request);
        if let Ok(offer) = validate_request(&Method::GET, Version::HTTP_11, &request, &policy) {
            let mut forwarded = request.clone();
            prepare_backend_headers(&mut forwarded, &offer);
            let _ = validate_response(&response, &offer);
            // The correct answer to this offer is always accepted.
            let mut good = HeaderMap::new();
            good.insert("upgrade", HeaderValue::from_static("websocket"));
            good.insert("connection", HeaderValue::from_static("Upgrade"));
            good.insert(
                "sec-websocket-accept",
                accept_key(offer.key.as_bytes()).parse().unwrap(),
            );
            let negotiated = validate_response(&good, &offer).expect("a correct 101");
            let mut answer = HeaderMap::new();
            add_client_response_headers(&mut answer, &negotiated);
            assert_eq!(answer[http::header::SEC_WEBSOCKET_ACCEPT], negotiated.accept);
        }
    }
});
