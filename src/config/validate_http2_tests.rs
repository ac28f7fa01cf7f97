//! `listeners[].http2` and `http2_settings`: defaults per listener kind, and each bound.

use super::super::Config;
use super::tests::{errors, with};
use crate::config::Http2Settings;

const LISTENER: &str = "    handshake_timeout: 5s\n";

fn listener_with(extra: &str) -> String {
    with(LISTENER, &format!("{LISTENER}{extra}"))
}

#[test]
fn a_plain_listener_has_no_http2_unless_asked_and_then_the_defaults() {
    let c = Config::from_yaml(&listener_with("")).unwrap();
    assert_eq!(c.listeners[0].http2, None);
    let c = Config::from_yaml(&listener_with("    http2: true\n")).unwrap();
    let h2 = c.listeners[0].http2.expect("on");
    assert_eq!(h2.max_concurrent_streams, 256);
    assert_eq!(
        h2.initial_stream_window_size,
        Http2Settings::DEFAULT_STREAM_WINDOW
    );
    assert_eq!(h2.initial_connection_window_size, 1 << 20);
    assert_eq!(h2.max_header_list_size, 64 * 1024);
    assert_eq!(h2.max_client_resets, 100);
}

#[test]
fn settings_are_read_and_the_header_list_follows_the_head_size() {
    let yaml = listener_with(
        "    http2: true\n    max_request_head_size: 16KiB\n    http2_settings:\n      \
         max_concurrent_streams: 10\n      initial_stream_window_size: 64KiB\n      \
         initial_connection_window_size: 2MiB\n      max_client_resets: 7\n",
    );
    let h2 = Config::from_yaml(&yaml).unwrap().listeners[0]
        .http2
        .unwrap();
    assert_eq!(
        h2,
        Http2Settings {
            max_concurrent_streams: 10,
            initial_stream_window_size: 65_536,
            initial_connection_window_size: 2 << 20,
            max_header_list_size: 16_384,
            max_client_resets: 7,
        }
    );
}

#[test]
fn each_bad_setting_is_an_error_at_its_path() {
    let yaml = listener_with(
        "    http2: true\n    http2_settings:\n      max_concurrent_streams: 0\n      \
         initial_stream_window_size: 1KiB\n      initial_connection_window_size: 4GiB\n      \
         max_client_resets: 0\n",
    );
    let errs = errors(&yaml);
    for path in [
        "listeners[0].http2_settings.max_concurrent_streams",
        "listeners[0].http2_settings.max_client_resets",
        "listeners[0].http2_settings.initial_stream_window_size",
        "listeners[0].http2_settings.initial_connection_window_size",
    ] {
        assert!(errs.iter().any(|e| e.starts_with(path)), "{path}: {errs:?}");
    }
}

#[test]
fn settings_without_http2_are_an_error_not_ignored() {
    let errs = errors(&listener_with(
        "    http2: false\n    http2_settings:\n      max_concurrent_streams: 5\n",
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("listeners[0].http2_settings"),
        "{errs:?}"
    );
}
