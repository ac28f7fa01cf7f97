//! Byte-vector tests of the tracker: every rule in both directions, and prefix/byte-by-byte feeding.

use super::*;

const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

fn limits() -> Limits {
    Limits {
        max_frame_size: 1 << 20,
        max_message_size: 4 << 20,
        validate_utf8: true,
        answer_pings: true,
        compression: None,
        remask: None,
    }
}

/// A frame as raw bytes; `mask` decides masking; `first` is the whole first byte (FIN, RSV, opcode).
fn raw(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![first];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mut body = payload.to_vec();
    if let Some(key) = mask {
        out.extend_from_slice(&key);
        apply_mask(&mut body, key, 0);
    }
    out.extend_from_slice(&body);
    out
}

/// Builds a frame as `sender` would send it (client frames masked).
fn frame(sender: Sender, first: u8, payload: &[u8]) -> Vec<u8> {
    raw(first, payload, (sender == Sender::Client).then_some(KEY))
}

#[derive(Debug, Default, PartialEq)]
struct Outcome {
    forwarded: Vec<u8>,
    pings: Vec<Vec<u8>>,
    closes: Vec<Option<u16>>,
    frames: Vec<FrameDone>,
    discarded: usize,
    violation: Option<(Violation, bool)>,
}

/// Drives a tracker the way the relay does: a buffer of `capacity` bytes, input arriving in pieces
/// of `piece` bytes, unconsumed bytes kept at the front.
fn drive(sender: Sender, limits: Limits, input: &[u8], capacity: usize, piece: usize) -> Outcome {
    let mut tracker = Tracker::new(sender, limits);
    let mut out = Outcome::default();
    let mut buf = vec![0u8; capacity];
    let mut filled = 0;
    let mut fed = 0;
    loop {
        let n = piece.min(input.len() - fed).min(capacity - filled);
        buf[filled..filled + n].copy_from_slice(&input[fed..fed + n]);
        filled += n;
        fed += n;
        let mut pos = 0;
        loop {
            match tracker.step(&mut buf[pos..filled], capacity) {
                Step::NeedMore => break,
                Step::Forward { len, done } => {
                    out.forwarded.extend_from_slice(&buf[pos..pos + len]);
                    out.frames.extend(done);
                    pos += len;
                }
                Step::AnswerPing { len, payload } => {
                    out.pings
                        .push(buf[pos + payload.start..pos + payload.end].to_vec());
                    pos += len;
                }
                Step::Close { len, code } => {
                    out.forwarded.extend_from_slice(&buf[pos..pos + len]);
                    out.closes.push(code);
                    pos += len;
                }
                Step::Discard { len, .. } => {
                    out.discarded += len;
                    pos += len;
                }
                Step::Violation {
                    violation,
                    mid_frame,
                } => {
                    out.violation = Some((violation, mid_frame));
                    return out;
                }
            }
            if pos == filled {
                break;
            }
        }
        buf.copy_within(pos..filled, 0);
        filled -= pos;
        if fed == input.len() && n == 0 {
            return out;
        }
    }
}

fn whole(sender: Sender, input: &[u8]) -> Outcome {
    drive(sender, limits(), input, 1 << 16, usize::MAX)
}

fn violation_of(sender: Sender, input: &[u8]) -> Option<(Violation, bool)> {
    whole(sender, input).violation
}

/// A client text message in two fragments with a ping between them, a binary frame, then close.
fn conversation() -> Vec<u8> {
    let s = Sender::Client;
    [
        frame(s, 0x01, "héllo ".as_bytes()),
        frame(s, 0x89, b"ping!"),
        frame(s, 0x80, "wörld".as_bytes()),
        frame(s, 0x82, &[7u8; 300]),
        frame(s, 0x88, &[0x03, 0xE8, b'o', b'k']),
    ]
    .concat()
}

#[test]
fn conversation_whole() {
    let input = conversation();
    let out = whole(Sender::Client, &input);
    assert_eq!(out.violation, None);
    assert_eq!(out.pings, vec![b"ping!".to_vec()]);
    assert_eq!(out.closes, vec![Some(1000)]);
    let ping_len = 2 + 4 + 5;
    let first_len = 2 + 4 + "héllo ".len();
    let mut expected = input.clone();
    expected.drain(first_len..first_len + ping_len);
    assert_eq!(out.forwarded, expected);
    let ends: Vec<_> = out.frames.iter().map(|f| f.message_end).collect();
    assert_eq!(ends, vec![None, Some(OpCode::Text), Some(OpCode::Binary)]);
    assert_eq!(out.frames[0].opcode, OpCode::Text);
    assert_eq!(out.frames[1].opcode, OpCode::Continuation);
}

#[test]
fn every_prefix_needs_more_until_whole() {
    let input = conversation();
    let full = whole(Sender::Client, &input);
    for cut in 0..input.len() {
        let out = whole(Sender::Client, &input[..cut]);
        assert_eq!(out.violation, None, "prefix {cut}");
        assert!(full.forwarded.starts_with(&out.forwarded), "prefix {cut}");
        assert!(out.closes.is_empty(), "prefix {cut}");
    }
}

#[test]
fn byte_by_byte_and_small_buffers_agree() {
    let input = conversation();
    let full = whole(Sender::Client, &input);
    for (capacity, piece) in [(64, 1), (64, 7), (20, 3), (200, 50), (400, 1)] {
        let out = drive(Sender::Client, limits(), &input, capacity, piece);
        assert_eq!(
            out.forwarded, full.forwarded,
            "capacity {capacity} piece {piece}"
        );
        assert_eq!(out.pings, full.pings);
        assert_eq!(out.closes, full.closes);
        assert_eq!(out.violation, None);
        let ends: Vec<_> = out.frames.iter().map(|f| f.message_end).collect();
        let full_ends: Vec<_> = full.frames.iter().map(|f| f.message_end).collect();
        assert_eq!(ends, full_ends);
    }
}

#[test]
fn frames_up_to_the_limit_wait_whole() {
    let input = frame(Sender::Client, 0x82, &[1u8; 100]);
    let mut tracker = Tracker::new(Sender::Client, limits());
    let mut part = input[..50].to_vec();
    assert_eq!(tracker.step(&mut part, 1024), Step::NeedMore);
    // Over the limit the same frame streams: header and the payload so far.
    let mut tracker = Tracker::new(Sender::Client, limits());
    match tracker.step(&mut part, 32) {
        Step::Forward {
            len: 50,
            done: None,
        } => {}
        other => panic!("{other:?}"),
    }
    assert!(!tracker.at_frame_boundary());
}

#[test]
fn length_boundaries() {
    for len in [0usize, 125, 126, 127, 65535, 65536] {
        for sender in [Sender::Client, Sender::Upstream] {
            let input = frame(sender, 0x82, &vec![0xAB; len]);
            let out = drive(sender, limits(), &input, 1 << 17, usize::MAX);
            assert_eq!(out.forwarded, input, "len {len}");
            assert_eq!(out.frames[0].payload_len, len as u64);
        }
    }
}

#[test]
fn masking_rule_per_direction() {
    let unmasked = raw(0x81, b"hi", None);
    let masked = raw(0x81, b"hi", Some(KEY));
    assert_eq!(
        violation_of(Sender::Client, &unmasked),
        Some((Violation::UnmaskedFrame, false))
    );
    assert_eq!(
        violation_of(Sender::Upstream, &masked),
        Some((Violation::MaskedFrame, false))
    );
    assert_eq!(violation_of(Sender::Client, &masked), None);
    assert_eq!(violation_of(Sender::Upstream, &unmasked), None);
}

#[test]
fn header_rules_both_directions() {
    for s in [Sender::Client, Sender::Upstream] {
        let cases: Vec<(Vec<u8>, Violation)> = vec![
            (frame(s, 0x83, b""), Violation::ReservedOpcode),
            (frame(s, 0x87, b""), Violation::ReservedOpcode),
            (frame(s, 0x8B, b""), Violation::ReservedOpcode),
            (frame(s, 0x8F, b""), Violation::ReservedOpcode),
            (frame(s, 0xC1, b"x"), Violation::ReservedBits),
            (frame(s, 0xA2, b"x"), Violation::ReservedBits),
            (frame(s, 0x91, b"x"), Violation::ReservedBits),
            (frame(s, 0x89, &[0; 126]), Violation::ControlTooLong),
            (frame(s, 0x09, b"p"), Violation::FragmentedControl),
            (frame(s, 0x80, b"x"), Violation::BadContinuation),
            (
                [frame(s, 0x01, b"a"), frame(s, 0x81, b"b")].concat(),
                Violation::UnfinishedMessage,
            ),
            (
                [frame(s, 0x02, b"a"), frame(s, 0x82, b"b")].concat(),
                Violation::UnfinishedMessage,
            ),
            (frame(s, 0x81, &[0xC0, 0x80]), Violation::InvalidUtf8),
            (frame(s, 0x88, &[0x03]), Violation::BadClose),
            (frame(s, 0x88, &999u16.to_be_bytes()), Violation::BadClose),
            (frame(s, 0x88, &1005u16.to_be_bytes()), Violation::BadClose),
            (frame(s, 0x88, &[0x03, 0xE8, 0xFF]), Violation::InvalidUtf8),
        ];
        for (input, expected) in cases {
            assert_eq!(
                violation_of(s, &input),
                Some((expected, false)),
                "{s:?} {input:x?}"
            );
        }
    }
}

#[test]
fn non_minimal_and_msb_lengths() {
    let mut short = vec![0x82, 126, 0, 5];
    short.extend_from_slice(b"hello");
    assert_eq!(
        violation_of(Sender::Upstream, &short),
        Some((Violation::NonMinimalLength, false))
    );
    let msb = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(
        violation_of(Sender::Upstream, &msb),
        Some((Violation::BadLength, false))
    );
}

#[test]
fn size_limits_at_and_over() {
    let small = Limits {
        max_frame_size: 10,
        max_message_size: 15,
        ..limits()
    };
    let run = |input: &[u8]| drive(Sender::Client, small, input, 1024, usize::MAX).violation;
    assert_eq!(run(&frame(Sender::Client, 0x82, &[0; 10])), None);
    assert_eq!(
        run(&frame(Sender::Client, 0x82, &[0; 11])),
        Some((Violation::FrameTooBig, false))
    );
    let ok = [
        frame(Sender::Client, 0x02, &[0; 10]),
        frame(Sender::Client, 0x80, &[0; 5]),
    ]
    .concat();
    assert_eq!(run(&ok), None);
    let over = [
        frame(Sender::Client, 0x02, &[0; 10]),
        frame(Sender::Client, 0x80, &[0; 6]),
    ]
    .concat();
    assert_eq!(run(&over), Some((Violation::MessageTooBig, false)));
}

#[test]
fn utf8_split_across_fragments() {
    let euro = "€".as_bytes(); // E2 82 AC
    for cut in 1..euro.len() {
        let valid = [
            frame(Sender::Client, 0x01, &euro[..cut]),
            frame(Sender::Client, 0x80, &euro[cut..]),
        ]
        .concat();
        assert_eq!(violation_of(Sender::Client, &valid), None, "cut {cut}");
        let truncated = [
            frame(Sender::Client, 0x01, &euro[..cut]),
            frame(Sender::Client, 0x80, b""),
        ]
        .concat();
        assert_eq!(
            violation_of(Sender::Client, &truncated),
            Some((Violation::InvalidUtf8, false)),
            "cut {cut}"
        );
    }
    let surrogate = [
        frame(Sender::Upstream, 0x01, &[0xED]),
        frame(Sender::Upstream, 0x80, &[0xA0, 0x80]),
    ]
    .concat();
    assert_eq!(
        violation_of(Sender::Upstream, &surrogate),
        Some((Violation::InvalidUtf8, false))
    );
}

#[test]
fn utf8_off_and_binary_are_not_inspected() {
    let no_utf8 = Limits {
        validate_utf8: false,
        ..limits()
    };
    let input = frame(Sender::Client, 0x81, &[0xFF, 0xFE]);
    assert_eq!(
        drive(Sender::Client, no_utf8, &input, 1024, usize::MAX).violation,
        None
    );
    assert_eq!(
        violation_of(Sender::Client, &frame(Sender::Client, 0x82, &[0xFF])),
        None
    );
}

#[test]
fn invalid_utf8_in_a_later_chunk_is_mid_frame() {
    let mut payload = vec![b'a'; 3000];
    payload[2500] = 0xFF;
    let input = frame(Sender::Client, 0x81, &payload);
    let out = drive(Sender::Client, limits(), &input, 1024, 1024);
    assert_eq!(out.violation, Some((Violation::InvalidUtf8, true)));
    assert!(out.forwarded.len() < 2500 + 8);
}

#[test]
fn close_codes_and_data_after_close() {
    for code in [1000u16, 1001, 1003, 1007, 1014, 3000, 4999] {
        let input = frame(Sender::Upstream, 0x88, &code.to_be_bytes());
        assert_eq!(whole(Sender::Upstream, &input).closes, vec![Some(code)]);
    }
    for code in [0u16, 999, 1004, 1006, 1015, 1016, 2999, 5000] {
        let input = frame(Sender::Client, 0x88, &code.to_be_bytes());
        assert_eq!(
            violation_of(Sender::Client, &input),
            Some((Violation::BadClose, false)),
            "{code}"
        );
    }
    let input = [
        frame(Sender::Client, 0x88, b""),
        frame(Sender::Client, 0x81, b"late"),
        frame(Sender::Client, 0x88, b""),
    ]
    .concat();
    let mut tracker = Tracker::new(Sender::Client, limits());
    let mut buf = input.clone();
    assert_eq!(
        tracker.step(&mut buf, 1024),
        Step::Close { len: 6, code: None }
    );
    assert_eq!(
        tracker.step(&mut buf[6..10], 1024),
        Step::Discard {
            len: 4,
            first_after_close: true
        }
    );
    assert_eq!(
        tracker.step(&mut buf[10..], 1024),
        Step::Discard {
            len: input.len() - 10,
            first_after_close: false
        }
    );
    assert!(tracker.is_closed_or_failed());
}

#[test]
fn pings_answered_or_forwarded() {
    let ping = frame(Sender::Client, 0x89, b"abc");
    let mut tracker = Tracker::new(Sender::Client, limits());
    let mut buf = ping.clone();
    assert_eq!(
        tracker.step(&mut buf, 1024),
        Step::AnswerPing {
            len: 9,
            payload: 6..9
        }
    );
    assert_eq!(&buf[6..9], b"abc");
    let forward = Limits {
        answer_pings: false,
        ..limits()
    };
    let out = drive(Sender::Client, forward, &ping, 1024, usize::MAX);
    assert_eq!(out.forwarded, ping);
    // Upstream pings are never answered by the proxy.
    let ping = frame(Sender::Upstream, 0x89, &[0u8; 125]);
    assert_eq!(whole(Sender::Upstream, &ping).forwarded, ping);
    let pong = frame(Sender::Upstream, 0x8A, b"");
    assert_eq!(whole(Sender::Upstream, &pong).forwarded, pong);
}

#[test]
fn failed_tracker_stays_failed() {
    let mut tracker = Tracker::new(Sender::Client, limits());
    let mut bad = raw(0x81, b"x", None);
    let first = tracker.step(&mut bad, 1024);
    assert_eq!(
        first,
        Step::Violation {
            violation: Violation::UnmaskedFrame,
            mid_frame: false
        }
    );
    let mut good = frame(Sender::Client, 0x81, b"x");
    assert_eq!(tracker.step(&mut good, 1024), first);
    assert!(tracker.is_closed_or_failed());
}

#[path = "tracker_compression_tests.rs"]
mod compression;

#[path = "tracker_remask_tests.rs"]
mod remask;
