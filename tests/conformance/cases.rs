//! The conformance cases: for each direction, the bytes a raw peer sends and what must follow.

use crate::support::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// The raw client sends (masked frames).
    ClientSends,
    /// The raw backend sends (unmasked frames).
    UpstreamSends,
}

#[derive(Debug, Clone)]
pub enum Expect {
    /// Forwarded as sent: the other side gets exactly these frames (first byte, payload); nothing
    /// comes back to the sender; both connections stay open.
    Forwarded(Vec<(u8, Vec<u8>)>),
    /// A rule broke: the sender gets this close code, the other side these frames then a close
    /// (1001 toward the backend, 1014 toward the client); both connections end.
    Violation {
        code: u16,
        kind: &'static str,
        forwarded_first: Vec<(u8, Vec<u8>)>,
    },
    /// A client ping wsgate answers: the client gets this pong; the backend gets nothing.
    Answered(Vec<u8>),
    /// After a close frame: the other side gets only the close; later bytes are dropped and counted.
    DroppedAfterClose(Vec<(u8, Vec<u8>)>),
}

pub struct Case {
    pub name: String,
    /// Frames as (first byte, payload) or raw bytes, built for the sending side.
    pub bytes: Vec<u8>,
    pub expect: Expect,
}

/// A frame as `dir`'s sender puts it on the wire.
pub fn f(dir: Dir, first: u8, payload: &[u8]) -> Vec<u8> {
    match dir {
        Dir::ClientSends => client_frame(first, payload),
        Dir::UpstreamSends => frame(first, payload, None),
    }
}

pub fn frames(list: &[(u8, &[u8])]) -> Vec<(u8, Vec<u8>)> {
    list.iter().map(|(b, p)| (*b, p.to_vec())).collect()
}

pub fn violation(code: u16, kind: &'static str) -> Expect {
    Expect::Violation {
        code,
        kind,
        forwarded_first: vec![],
    }
}

/// A frame whose length field is spelled out (`len_bytes` after the second byte), for encodings the
/// builder would never produce.
pub fn raw_len(dir: Dir, first: u8, len7: u8, len_bytes: &[u8], payload: &[u8]) -> Vec<u8> {
    let masked = dir == Dir::ClientSends;
    let mut out = vec![first, len7 | if masked { 0x80 } else { 0 }];
    out.extend_from_slice(len_bytes);
    if masked {
        out.extend_from_slice(&KEY);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

pub fn cases(dir: Dir) -> Vec<Case> {
    let mut c = Vec::new();
    let mut add = |name: String, bytes: Vec<u8>, expect: Expect| {
        c.push(Case {
            name,
            bytes,
            expect,
        })
    };

    // Framing: every length encoding, forwarded byte for byte.
    for len in [0usize, 1, 125, 126, 65535, 65536] {
        let payload = vec![0x5A; len];
        add(
            format!("binary of {len} bytes"),
            f(dir, 0x82, &payload),
            Expect::Forwarded(vec![(0x82, payload)]),
        );
    }
    add(
        "64-bit length with the MSB set".into(),
        raw_len(dir, 0x82, 127, &[0x80, 0, 0, 0, 0, 0, 0, 1], b""),
        violation(1002, "bad_length"),
    );
    add(
        "16-bit length for 5 bytes".into(),
        raw_len(dir, 0x82, 126, &[0, 5], b"hello"),
        violation(1002, "non_minimal_length"),
    );
    add(
        "64-bit length for 125 bytes".into(),
        raw_len(dir, 0x82, 127, &[0, 0, 0, 0, 0, 0, 0, 125], &[1; 125]),
        violation(1002, "non_minimal_length"),
    );
    add(
        "64-bit length for 65535 bytes".into(),
        raw_len(dir, 0x82, 127, &[0, 0, 0, 0, 0, 0, 0xFF, 0xFF], &[1; 65535]),
        violation(1002, "non_minimal_length"),
    );

    // Reserved bits and opcodes.
    for (bit, name) in [(0x40u8, "RSV1"), (0x20, "RSV2"), (0x10, "RSV3")] {
        add(
            format!("{name} without an extension"),
            f(dir, 0x81 | bit, b"x"),
            violation(1002, "reserved_bits"),
        );
    }
    for opcode in (3u8..=7).chain(11..=15) {
        add(
            format!("reserved opcode {opcode}"),
            f(dir, 0x80 | opcode, b""),
            violation(1002, "reserved_opcode"),
        );
    }

    // Pings and pongs.
    for len in [0usize, 125] {
        let payload = vec![0xA5; len];
        let expect = match dir {
            Dir::ClientSends => Expect::Answered(payload.clone()),
            Dir::UpstreamSends => Expect::Forwarded(vec![(0x89, payload.clone())]),
        };
        add(
            format!("ping of {len} bytes"),
            f(dir, 0x89, &payload),
            expect,
        );
    }
    let binary: Vec<u8> = (0..=124u8).rev().collect();
    let expect = match dir {
        Dir::ClientSends => Expect::Answered(binary.clone()),
        Dir::UpstreamSends => Expect::Forwarded(vec![(0x89, binary.clone())]),
    };
    add(
        "ping with a binary payload".into(),
        f(dir, 0x89, &binary),
        expect,
    );
    add(
        "ping of 126 bytes".into(),
        f(dir, 0x89, &[0; 126]),
        violation(1002, "control_too_long"),
    );
    add(
        "close of 126 bytes".into(),
        f(dir, 0x88, &[0x03; 126]),
        violation(1002, "control_too_long"),
    );
    add(
        "unsolicited pong".into(),
        f(dir, 0x8A, b"unasked"),
        Expect::Forwarded(frames(&[(0x8A, b"unasked")])),
    );
    add(
        "empty pong".into(),
        f(dir, 0x8A, b""),
        Expect::Forwarded(frames(&[(0x8A, b"")])),
    );
    add(
        "fragmented ping".into(),
        f(dir, 0x09, b"p"),
        violation(1002, "fragmented_control"),
    );

    // Fragmentation.
    add(
        "text in three fragments".into(),
        [
            f(dir, 0x01, b"ab"),
            f(dir, 0x00, b"cd"),
            f(dir, 0x80, b"ef"),
        ]
        .concat(),
        Expect::Forwarded(frames(&[(0x01, b"ab"), (0x00, b"cd"), (0x80, b"ef")])),
    );
    // A pong: forwarded whichever side sends it (a client's ping would be answered, see above).
    add(
        "control frame inside a fragmented message".into(),
        [
            f(dir, 0x01, b"ab"),
            f(dir, 0x8A, b"mid"),
            f(dir, 0x80, b"cd"),
        ]
        .concat(),
        Expect::Forwarded(frames(&[(0x01, b"ab"), (0x8A, b"mid"), (0x80, b"cd")])),
    );
    add(
        "continuation with no message".into(),
        f(dir, 0x80, b"x"),
        violation(1002, "bad_continuation"),
    );
    add(
        "new text before FIN".into(),
        [f(dir, 0x01, b"a"), f(dir, 0x81, b"b")].concat(),
        Expect::Violation {
            code: 1002,
            kind: "bad_continuation",
            forwarded_first: frames(&[(0x01, b"a")]),
        },
    );
    add(
        "new binary before FIN".into(),
        [f(dir, 0x02, b"a"), f(dir, 0x82, b"b")].concat(),
        Expect::Violation {
            code: 1002,
            kind: "bad_continuation",
            forwarded_first: frames(&[(0x02, b"a")]),
        },
    );

    // UTF-8.
    for (name, text) in [
        ("ASCII", "plain"),
        ("2-byte", "κόσμε"),
        ("3-byte", "€ 中文"),
        ("4-byte", "𝄞 😀"),
    ] {
        add(
            format!("valid {name} text"),
            f(dir, 0x81, text.as_bytes()),
            Expect::Forwarded(vec![(0x81, text.as_bytes().to_vec())]),
        );
    }
    for (name, bytes) in [
        ("lone continuation byte", &[0x80u8][..]),
        ("overlong NUL", &[0xC0, 0x80]),
        ("overlong slash", &[0xE0, 0x80, 0xAF]),
        ("UTF-16 surrogate", &[0xED, 0xA0, 0x80]),
        ("above U+10FFFF", &[0xF4, 0x90, 0x80, 0x80]),
        ("byte FF", &[0x61, 0xFF]),
        ("truncated at the end", &[0xE2, 0x82]),
    ] {
        add(
            format!("invalid UTF-8: {name}"),
            f(dir, 0x81, bytes),
            violation(1007, "invalid_utf8"),
        );
    }
    let clef = "𝄞".as_bytes();
    for cut in 1..clef.len() {
        add(
            format!("4-byte code point split after byte {cut}"),
            [f(dir, 0x01, &clef[..cut]), f(dir, 0x80, &clef[cut..])].concat(),
            Expect::Forwarded(vec![
                (0x01, clef[..cut].to_vec()),
                (0x80, clef[cut..].to_vec()),
            ]),
        );
        add(
            format!("4-byte code point cut short after byte {cut}"),
            [f(dir, 0x01, &clef[..cut]), f(dir, 0x80, b"")].concat(),
            Expect::Violation {
                code: 1007,
                kind: "invalid_utf8",
                forwarded_first: vec![(0x01, clef[..cut].to_vec())],
            },
        );
    }

    // Close frames: every class of code.
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ] {
        let payload = code.to_be_bytes();
        add(
            format!("close {code}"),
            f(dir, 0x88, &payload),
            Expect::Forwarded(vec![(0x88, payload.to_vec())]),
        );
    }
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        add(
            format!("close {code} (invalid on the wire)"),
            f(dir, 0x88, &code.to_be_bytes()),
            violation(1002, "bad_close"),
        );
    }
    add(
        "empty close".into(),
        f(dir, 0x88, b""),
        Expect::Forwarded(frames(&[(0x88, b"")])),
    );
    add(
        "close with a reason".into(),
        f(dir, 0x88, b"\x03\xe8bye"),
        Expect::Forwarded(frames(&[(0x88, b"\x03\xe8bye")])),
    );
    add(
        "close with a 1-byte payload".into(),
        f(dir, 0x88, b"\x03"),
        violation(1002, "bad_close"),
    );
    add(
        "close reason not UTF-8".into(),
        f(dir, 0x88, b"\x03\xe8\xff"),
        violation(1007, "invalid_utf8"),
    );
    add(
        "close after close".into(),
        [f(dir, 0x88, b"\x03\xe8"), f(dir, 0x88, b"\x03\xe8")].concat(),
        Expect::DroppedAfterClose(frames(&[(0x88, b"\x03\xe8")])),
    );
    add(
        "data after close".into(),
        [f(dir, 0x88, b""), f(dir, 0x81, b"late")].concat(),
        Expect::DroppedAfterClose(frames(&[(0x88, b"")])),
    );

    // Limits (max_frame_size 64 KiB, max_message_size 128 KiB in this suite: see WS).
    let limit = 64 << 10;
    add(
        "frame at max_frame_size".into(),
        f(dir, 0x82, &vec![7; limit]),
        Expect::Forwarded(vec![(0x82, vec![7; limit])]),
    );
    add(
        "frame over max_frame_size".into(),
        f(dir, 0x82, &vec![7; limit + 1]),
        violation(1009, "frame_too_big"),
    );
    add(
        "message over max_message_size".into(),
        [
            f(dir, 0x02, &vec![1; limit]),
            f(dir, 0x00, &vec![2; limit]),
            f(dir, 0x80, &[3; 1]),
        ]
        .concat(),
        Expect::Violation {
            code: 1009,
            kind: "message_too_big",
            forwarded_first: vec![(0x02, vec![1; limit]), (0x00, vec![2; limit])],
        },
    );

    // The masking rule, inverted per direction.
    match dir {
        Dir::ClientSends => add(
            "unmasked client frame".into(),
            frame(0x81, b"hi", None),
            violation(1002, "unmasked_frame"),
        ),
        Dir::UpstreamSends => add(
            "masked upstream frame".into(),
            frame(0x81, b"hi", Some(KEY)),
            violation(1002, "masked_frame"),
        ),
    }
    c
}
