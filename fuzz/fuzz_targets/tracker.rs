//! The frame tracker fed an arbitrary byte stream in arbitrary pieces, as either sender: it must never
//! panic, only forward bytes of the input in order, and say the same whatever the piece sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsgate_proto::tracker::{Limits, Sender, Step, Tracker};

/// Runs the relay's loop over `input` delivered in pieces of `piece` bytes into a buffer of `capacity`.
fn drive(
    sender: Sender,
    limits: Limits,
    input: &[u8],
    capacity: usize,
    piece: usize,
) -> (Vec<u8>, Option<u16>) {
    let mut tracker = Tracker::new(sender, limits);
    let mut buf = vec![0u8; capacity];
    let (mut filled, mut fed) = (0, 0);
    let mut forwarded = Vec::new();
    loop {
        let n = piece.min(input.len() - fed).min(capacity - filled);
        buf[filled..filled + n].copy_from_slice(&input[fed..fed + n]);
        filled += n;
        fed += n;
        let mut pos = 0;
        while pos < filled {
            let before = buf[pos..filled].to_vec();
            match tracker.step(&mut buf[pos..filled], capacity) {
                Step::NeedMore => break,
                Step::Forward { len, .. } | Step::Close { len, .. } => {
                    assert!(len > 0 && pos + len <= filled);
                    // Forwarded bytes are exactly what arrived.
                    assert_eq!(&buf[pos..pos + len], &before[..len]);
                    forwarded.extend_from_slice(&buf[pos..pos + len]);
                    pos += len;
                }
                Step::AnswerPing { len, payload } => {
                    assert!(payload.end <= len && pos + len <= filled && len <= 14 + 125);
                    pos += len;
                }
                Step::Discard { len, .. } => {
                    assert!(len > 0 && pos + len <= filled);
                    pos += len;
                }
                Step::Violation { violation, .. } => {
                    return (forwarded, Some(violation.close_code().as_u16()))
                }
            }
        }
        buf.copy_within(pos..filled, 0);
        filled -= pos;
        if fed == input.len() && n == 0 {
            return (forwarded, None);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let sender = if control & 1 == 0 {
        Sender::Client
    } else {
        Sender::Upstream
    };
    let limits = Limits {
        max_frame_size: if control & 2 == 0 { 1 << 20 } else { 64 },
        max_message_size: if control & 4 == 0 { 16 << 20 } else { 100 },
        validate_utf8: control & 8 == 0,
        answer_pings: control & 16 == 0,
        compression: None,
        remask: None,
    };
    let piece = 1 + usize::from(control >> 5) * 7;
    let whole = drive(sender, limits, input, 4096, input.len().max(1));
    let pieces = drive(sender, limits, input, 4096, piece);
    // A stream that is valid whole is valid in pieces, and forwards the same bytes.
    if whole.1.is_none() {
        assert_eq!(pieces.1, None);
        assert_eq!(whole.0, pieces.0);
    }
});
