//! `listeners[].http2` and `http2_settings`: on by default with TLS (ALPN `h2`), off by default on a
//! plain listener (prior knowledge only when asked for), and settings within what RFC 9113 allows.

use super::super::raw::{RawListener, RawSize};
use super::super::types::Http2Settings;
use super::super::units::parse_size;
use super::Errors;

/// RFC 9113 §6.5.2: a window is at most 2^31 - 1; below the 64 KiB default nothing is gained.
const WINDOWS: std::ops::RangeInclusive<u64> = 65_535..=(1 << 31) - 1;

pub(super) fn settings(
    path: &str,
    l: &RawListener,
    max_header_list_size: usize,
    errors: &mut Errors,
) -> Option<Http2Settings> {
    let on = l.http2.unwrap_or(l.tls.is_some());
    let raw = l.http2_settings.as_ref();
    if !on {
        if raw.is_some() {
            errors.push(
                format!("{path}.http2_settings"),
                "set, but HTTP/2 is off on this listener (http2: true turns it on)",
            );
        }
        return None;
    }
    let streams = raw.and_then(|r| r.max_concurrent_streams);
    if streams == Some(0) {
        errors.push(
            format!("{path}.http2_settings.max_concurrent_streams"),
            "must be at least 1",
        );
    }
    let resets = raw.and_then(|r| r.max_client_resets);
    if resets == Some(0) {
        errors.push(
            format!("{path}.http2_settings.max_client_resets"),
            "must be at least 1",
        );
    }
    let mut window = |name: &str, size: Option<&RawSize>, default: u32| match size {
        None => default,
        Some(size) => errors.take(
            format!("{path}.http2_settings.{name}"),
            parse_size(size).and_then(|n| {
                if WINDOWS.contains(&n) {
                    Ok(n as u32)
                } else {
                    Err(format!("{n} bytes is outside 65535..2147483647"))
                }
            }),
            default,
        ),
    };
    let stream_window = window(
        "initial_stream_window_size",
        raw.and_then(|r| r.initial_stream_window_size.as_ref()),
        Http2Settings::DEFAULT_STREAM_WINDOW,
    );
    let connection_window = window(
        "initial_connection_window_size",
        raw.and_then(|r| r.initial_connection_window_size.as_ref()),
        Http2Settings::DEFAULT_CONNECTION_WINDOW,
    );
    Some(Http2Settings {
        max_concurrent_streams: streams.unwrap_or(Http2Settings::DEFAULT_MAX_CONCURRENT_STREAMS),
        initial_stream_window_size: stream_window,
        initial_connection_window_size: connection_window,
        // At most 1 MiB by validation of max_request_head_size.
        max_header_list_size: u32::try_from(max_header_list_size).unwrap_or(u32::MAX),
        max_client_resets: resets.unwrap_or(Http2Settings::DEFAULT_MAX_CLIENT_RESETS),
    })
}
