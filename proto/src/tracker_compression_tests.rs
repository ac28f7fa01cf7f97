//! permessage-deflate through the tracker: RSV1 only where RFC 7692 allows it, compressed bytes
//! forwarded unchanged, inflated content checked and bounded.

use super::*;
use flate2::{Compress, Compression, FlushCompress};

fn deflate_limits(max_message: u64) -> Limits {
    Limits {
        max_message_size: max_message,
        compression: Some(false),
        remask: None,
        ..limits()
    }
}

/// One message compressed the way a sender does (sync flush, tail removed: RFC 7692 §7.2.1).
fn compress(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    out.truncate(out.len() - 4);
    out
}

#[test]
fn compressed_messages_pass_unchanged_across_fragments_and_context() {
    for sender in [Sender::Client, Sender::Upstream] {
        let mut c = Compress::new(Compression::default(), false);
        let one = compress(&mut c, "héllo wörld, héllo wörld".as_bytes());
        let two = compress(&mut c, "héllo wörld, héllo again".as_bytes());
        let (a, b) = two.split_at(two.len() / 2);
        let input = [
            frame(sender, 0xC1, &one),              // RSV1 + text, whole message
            frame(sender, 0x41, a),                 // RSV1 + text, first fragment
            frame(sender, 0x80, b),                 // continuation: no RSV1
            frame(sender, 0x82, b"not compressed"), // an uncompressed message is fine too
        ]
        .concat();
        let out = drive(sender, deflate_limits(1 << 20), &input, 64, 5);
        assert_eq!(out.violation, None, "{sender:?}");
        assert_eq!(out.forwarded, input);
        let ends: Vec<_> = out.frames.iter().map(|f| f.message_end).collect();
        assert_eq!(
            ends,
            [
                Some(OpCode::Text),
                None,
                Some(OpCode::Text),
                Some(OpCode::Binary)
            ]
        );
    }
}

#[test]
fn rsv1_only_on_the_first_frame_of_a_data_message() {
    let mut c = Compress::new(Compression::default(), false);
    let data = compress(&mut c, b"abc");
    let cases = [
        [
            frame(Sender::Client, 0x41, &data),
            frame(Sender::Client, 0xC0, b""),
        ]
        .concat(),
        frame(Sender::Client, 0xC9, b"ping"),
        frame(Sender::Client, 0xA1, b"x"), // RSV2
    ];
    for input in cases {
        let out = drive(
            Sender::Client,
            deflate_limits(1 << 20),
            &input,
            1024,
            usize::MAX,
        );
        assert_eq!(out.violation.map(|v| v.0), Some(Violation::ReservedBits));
    }
}

/// `max_frame_size` bounds the bytes on the wire; the inflated size counts only against
/// `max_message_size` (RFC 7692 leaves frame limits to the wire format).
#[test]
fn max_frame_size_applies_to_wire_bytes() {
    let limits = Limits {
        max_frame_size: 1024,
        ..deflate_limits(1 << 20)
    };
    let mut c = Compress::new(Compression::best(), false);
    let small_on_wire = compress(&mut c, &vec![b'a'; 64 << 10]);
    assert!(small_on_wire.len() < 1024, "{}", small_on_wire.len());
    let input = frame(Sender::Client, 0xC1, &small_on_wire);
    let out = drive(Sender::Client, limits, &input, 4096, usize::MAX);
    assert_eq!(out.violation, None);
    assert_eq!(out.forwarded, input);

    let mut c = Compress::new(Compression::none(), false);
    let large_on_wire = compress(&mut c, &[b'a'; 2048]);
    assert!(large_on_wire.len() > 1024);
    let out = drive(
        Sender::Client,
        limits,
        &frame(Sender::Client, 0xC1, &large_on_wire),
        4096,
        usize::MAX,
    );
    assert_eq!(out.violation, Some((Violation::FrameTooBig, false)));
}

#[test]
fn compressed_content_is_checked() {
    let mut c = Compress::new(Compression::default(), false);
    let bad_text = compress(&mut c, &[0x61, 0xC0, 0x80]);
    let out = drive(
        Sender::Client,
        deflate_limits(1 << 20),
        &frame(Sender::Client, 0xC1, &bad_text),
        1024,
        usize::MAX,
    );
    assert_eq!(out.violation, Some((Violation::InvalidUtf8, false)));

    // A bomb: 1 MiB of zeros in about 1 KiB of wire bytes, against a 64 KiB message limit.
    let mut c = Compress::new(Compression::best(), false);
    let bomb = compress(&mut c, &vec![0u8; 1 << 20]);
    for opcode in [0xC1u8, 0xC2] {
        let out = drive(
            Sender::Upstream,
            deflate_limits(64 << 10),
            &frame(Sender::Upstream, opcode, &bomb),
            4096,
            usize::MAX,
        );
        assert_eq!(
            out.violation,
            Some((Violation::MessageTooBig, false)),
            "{opcode:x}"
        );
    }

    let out = drive(
        Sender::Client,
        deflate_limits(1 << 20),
        &frame(Sender::Client, 0xC2, &[0xFF; 8]),
        1024,
        usize::MAX,
    );
    assert_eq!(out.violation, Some((Violation::BadCompression, false)));
}
