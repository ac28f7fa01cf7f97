//! Re-masking (RFC 6455 §10.3): every forwarded client frame carries a key of wsgate's own, and
//! unmasks to the same payload, however the bytes are split.

use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

/// A deterministic key source for tests: never equal to the client's `KEY`.
fn counting_keys() -> [u8; 4] {
    static NEXT: AtomicU32 = AtomicU32::new(0x0101_0101);
    NEXT.fetch_add(0x0102_0305, Ordering::Relaxed).to_be_bytes()
}

fn remasking(answer_pings: bool) -> Limits {
    Limits {
        answer_pings,
        remask: Some(counting_keys),
        ..limits()
    }
}

/// Splits forwarded bytes into frames: (first byte, masking key, unmasked payload).
fn frames_of(mut bytes: &[u8]) -> Vec<(u8, Option<[u8; 4]>, Vec<u8>)> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (header, header_len) = parse_header(bytes).unwrap().unwrap();
        let end = header_len + header.payload_len as usize;
        let mut payload = bytes[header_len..end].to_vec();
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        frames.push((bytes[0], header.mask, payload));
        bytes = &bytes[end..];
    }
    frames
}

/// Text in three fragments with a two-byte character split across two of them, a forwarded ping
/// between fragments, a pong, a binary frame, a frame that streams (larger than small buffers),
/// then close.
fn conversation() -> (Vec<u8>, Vec<(u8, Vec<u8>)>) {
    let big: Vec<u8> = (0..20_000u32).map(|i| (i * 7) as u8).collect();
    let plain: Vec<(u8, Vec<u8>)> = vec![
        (0x01, b"caf\xC3".to_vec()),
        (0x89, b"ping".to_vec()),
        (0x00, b"\xA9 au ".to_vec()),
        (0x80, "lait ✓".as_bytes().to_vec()),
        (0x8A, b"pong".to_vec()),
        (0x82, big),
        (0x88, vec![0x03, 0xE8, b'b', b'y', b'e']),
    ];
    let wire = plain
        .iter()
        .map(|(first, payload)| frame(Sender::Client, *first, payload))
        .collect::<Vec<_>>()
        .concat();
    (wire, plain)
}

#[test]
fn forwarded_client_frames_get_new_keys_and_the_same_payloads() {
    let (wire, plain) = conversation();
    for (capacity, piece) in [(1 << 16, usize::MAX), (1 << 16, 1), (1024, 1000), (64, 7)] {
        let out = drive(Sender::Client, remasking(false), &wire, capacity, piece);
        assert_eq!(out.violation, None, "capacity {capacity} piece {piece}");
        let frames = frames_of(&out.forwarded);
        assert_eq!(
            frames.len(),
            plain.len(),
            "capacity {capacity} piece {piece}"
        );
        for ((first, key, payload), (want_first, want)) in frames.iter().zip(&plain) {
            assert_eq!(first, want_first);
            assert_eq!(payload, want, "capacity {capacity} piece {piece}");
            assert!(
                key.is_some_and(|k| k != KEY),
                "frame {first:#x} kept the client's key"
            );
        }
        assert_eq!(out.closes, vec![Some(1000)]);
    }
}

#[test]
fn every_frame_gets_a_key_of_its_own() {
    let (wire, _) = conversation();
    let out = drive(Sender::Client, remasking(false), &wire, 1 << 16, usize::MAX);
    let mut keys: Vec<[u8; 4]> = frames_of(&out.forwarded)
        .into_iter()
        .filter_map(|(_, key, _)| key)
        .collect();
    let count = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), count);
}

#[test]
fn rules_still_hold_when_remasking() {
    // Invalid UTF-8 split across fragments is caught with the same verdict as without re-masking.
    let bad = [
        frame(Sender::Client, 0x01, b"ok \xE2\x82"),
        frame(Sender::Client, 0x80, b"\x41"),
    ]
    .concat();
    for piece in [1, 3, usize::MAX] {
        let out = drive(Sender::Client, remasking(true), &bad, 1 << 16, piece);
        assert_eq!(out.violation.map(|v| v.0), Some(Violation::InvalidUtf8));
    }
    // An answered ping is not forwarded, so it needs no key; its payload comes out unmasked.
    let ping = frame(Sender::Client, 0x89, b"abc");
    let out = drive(Sender::Client, remasking(true), &ping, 1024, usize::MAX);
    assert_eq!(out.pings, vec![b"abc".to_vec()]);
    assert!(out.forwarded.is_empty());
}

#[test]
fn upstream_frames_are_never_masked() {
    let upstream = [
        frame(Sender::Upstream, 0x81, b"hello"),
        frame(Sender::Upstream, 0x89, b""),
    ]
    .concat();
    let out = drive(
        Sender::Upstream,
        remasking(false),
        &upstream,
        1024,
        usize::MAX,
    );
    assert_eq!(out.forwarded, upstream);
}

#[test]
fn without_remask_the_bytes_are_forwarded_as_received() {
    let (wire, _) = conversation();
    let forward = Limits {
        answer_pings: false,
        ..limits()
    };
    for piece in [1, 1000, usize::MAX] {
        assert_eq!(
            drive(Sender::Client, forward, &wire, 1024, piece).forwarded,
            wire
        );
    }
}
