//! `ChunkedDecoder`: the same payload and the same end wherever the input is split; extensions and
//! trailers skipped; every bound and malformed line an error.

use super::*;

/// What a whole feed gave: the payload, and where the body ended (its offset in the input) or why
/// it failed. `None` as the end: the input ran out first.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    payload: Vec<u8>,
    end: Result<Option<usize>, ChunkError>,
}

/// Feeds `input` cut at each of `cuts` (ascending), as a caller reading the pieces one at a time
/// would: `&piece[consumed..]` again until the piece is used up or the body ends.
fn feed(input: &[u8], cuts: &[usize]) -> Outcome {
    let mut decoder = ChunkedDecoder::new();
    let mut payload = Vec::new();
    let bounds = cuts.iter().copied().chain([input.len()]);
    let mut start = 0;
    for stop in bounds {
        let mut at = start;
        // Each step consumes a byte or ends the feed: a bounded loop.
        for _ in 0..=input.len() {
            let step = match decoder.decode(&input[at..stop]) {
                Ok(step) => step,
                Err(error) => {
                    return Outcome {
                        payload,
                        end: Err(error),
                    }
                }
            };
            assert!(step.data.end == step.consumed || step.data.is_empty());
            payload.extend_from_slice(&input[at..stop][step.data]);
            at += step.consumed;
            if step.done {
                return Outcome {
                    payload,
                    end: Ok(Some(at)),
                };
            }
            if at == stop {
                break;
            }
        }
        start = stop;
    }
    Outcome {
        payload,
        end: Ok(None),
    }
}

/// Whole, cut at every position, and one byte at a time: all the same.
fn decode_everywhere(input: &[u8]) -> Outcome {
    let whole = feed(input, &[]);
    for cut in 0..=input.len() {
        assert_eq!(feed(input, &[cut]), whole, "cut at {cut}");
    }
    let bytewise: Vec<usize> = (1..input.len()).collect();
    assert_eq!(feed(input, &bytewise), whole, "one byte at a time");
    whole
}

fn body(payload: &[u8], end: usize) -> Outcome {
    Outcome {
        payload: payload.to_vec(),
        end: Ok(Some(end)),
    }
}

fn failed(payload: &[u8], error: ChunkError) -> Outcome {
    Outcome {
        payload: payload.to_vec(),
        end: Err(error),
    }
}

#[test]
fn a_body_decodes_the_same_wherever_it_is_split() {
    let input = b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n";
    let end = input.len() - b"HTTP/1.1 200 OK\r\n".len();
    assert_eq!(decode_everywhere(input), body(b"hello, world", end));
    assert_eq!(decode_everywhere(b"0\r\n\r\n"), body(b"", 5));
}

#[test]
fn one_step_stops_at_the_end_of_a_run_of_payload() {
    let mut decoder = ChunkedDecoder::default();
    let input = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nrest";
    let first = decoder.decode(input).unwrap();
    assert_eq!(
        (first.consumed, first.data.clone(), first.done),
        (6, 3..6, false)
    );
    let second = decoder.decode(&input[6..]).unwrap();
    assert_eq!(
        (second.consumed, second.data, second.done),
        (7, 5..7, false)
    );
    let last = decoder.decode(&input[13..]).unwrap();
    assert_eq!(
        (last.consumed, last.data.is_empty(), last.done),
        (7, true, true)
    );
    // After the end nothing more is consumed.
    assert_eq!(decoder.decode(b"rest").unwrap().consumed, 0);
    assert!(decoder.decode(b"").unwrap().done);
}

#[test]
fn a_long_chunk_arrives_in_runs() {
    let mut decoder = ChunkedDecoder::new();
    let step = decoder.decode(b"100\r\nabc").unwrap();
    assert_eq!((step.consumed, step.data, step.done), (8, 5..8, false));
    let step = decoder.decode(&[b'x'; 300]).unwrap();
    assert_eq!((step.consumed, step.data), (253, 0..253));
    assert!(decoder.decode(b"\r\n0\r\n\r\n").unwrap().done);
}

#[test]
fn extensions_and_trailers_are_skipped() {
    let input = b"4;name=value;quoted=\"a b;c\" \r\nwiki\r\n5 ; x\r\npedia\r\n\
0;last\r\nExpires: never\r\nX-Checksum: abc\r\n\r\nnext";
    let end = input.len() - 4;
    assert_eq!(decode_everywhere(input), body(b"wikipedia", end));
    assert_eq!(
        decode_everywhere(b"3\t\r\nabc\r\n0\r\n\r\n"),
        body(b"abc", 14)
    );
}

#[test]
fn uppercase_hex_and_leading_zeros_are_sizes() {
    let mut input = b"0000A\r\n".to_vec();
    input.extend_from_slice(&[b'z'; 10]);
    input.extend_from_slice(b"\r\n00a\r\n");
    input.extend_from_slice(&[b'y'; 10]);
    input.extend_from_slice(b"\r\n000\r\n\r\n");
    let mut payload = vec![b'z'; 10];
    payload.extend_from_slice(&[b'y'; 10]);
    assert_eq!(decode_everywhere(&input), body(&payload, input.len()));
    // The longest size in 63 bits is a size.
    let huge = feed(b"7fffffffffffffff\r\nab", &[]);
    assert_eq!(
        huge,
        Outcome {
            payload: b"ab".to_vec(),
            end: Ok(None)
        }
    );
}

#[test]
fn malformed_size_lines_are_errors() {
    for input in [
        &b"\r\n"[..],
        b"x\r\n",
        b";ext\r\n0\r\n\r\n",
        b" 5\r\nhello\r\n",
        b"-5\r\n",
        b"0x5\r\n",
        b"5 5\r\n",
        b"5\n",
        b"5\rx",
        b"5;a\nb\r\n",
        b"5;a\x00\r\n",
        b"5;\x7f\r\n",
        b"5\r\nhello\r\n\r\n",
    ] {
        let payload: &[u8] = if input.starts_with(b"5\r\nhello") {
            b"hello"
        } else {
            b""
        };
        assert_eq!(
            decode_everywhere(input),
            failed(payload, ChunkError::BadSizeLine),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn a_size_over_63_bits_overflows() {
    for input in [
        &b"8000000000000000\r\n"[..],
        b"10000000000000000\r\n",
        b"ffffffffffffffffff",
    ] {
        assert_eq!(
            decode_everywhere(input),
            failed(b"", ChunkError::SizeOverflow)
        );
    }
}

#[test]
fn data_not_followed_by_crlf_is_an_error() {
    for input in [
        &b"3\r\nabcd\r\n"[..],
        b"3\r\nabc\n0\r\n\r\n",
        b"3\r\nabc\r0\r\n\r\n",
    ] {
        assert_eq!(
            decode_everywhere(input),
            failed(b"abc", ChunkError::MissingCrlf)
        );
    }
}

#[test]
fn malformed_trailers_are_errors() {
    for input in [
        &b"0\r\nA: b\n\r\n"[..],
        b"0\r\nA: b\r\n\n",
        b"0\r\nA: b\rx",
        b"0\r\n\rx",
        b"0\r\n\n",
    ] {
        assert_eq!(
            decode_everywhere(input),
            failed(b"", ChunkError::BadTrailer),
            "{input:?}"
        );
    }
}

#[test]
fn a_size_line_is_at_most_4_kib() {
    let limit = 4 * 1024;
    let line = |len: usize| {
        let mut line = b"1;".to_vec();
        line.resize(len, b'x');
        line.extend_from_slice(b"\r\nA\r\n0\r\n\r\n");
        line
    };
    let fits = line(limit);
    assert_eq!(feed(&fits, &[]), body(b"A", fits.len()));
    let long = failed(b"", ChunkError::LineTooLong { limit });
    assert_eq!(feed(&line(limit + 1), &[]), long);
    // Leading zeros count too.
    let zeros = [&vec![b'0'; limit + 1][..], b"\r\n"].concat();
    assert_eq!(feed(&zeros, &[]), long);
}

#[test]
fn a_trailer_section_is_at_most_8_kib() {
    let limit = 8 * 1024;
    // The field lines plus the final CRLF, `len` bytes in all.
    let section = |len: usize| {
        let mut bytes = b"0\r\nX: ".to_vec();
        bytes.resize(3 + len - 4, b'v');
        bytes.extend_from_slice(b"\r\n\r\n");
        bytes
    };
    let fits = section(limit);
    assert_eq!(feed(&fits, &[]), body(b"", fits.len()));
    let long = section(limit + 1);
    assert_eq!(
        feed(&long, &[]),
        failed(b"", ChunkError::TrailersTooLong { limit })
    );
    // Many short lines add up the same way.
    let mut lines = b"0\r\n".to_vec();
    for _ in 0..limit / 4 {
        lines.extend_from_slice(b"A:\r\n");
    }
    lines.extend_from_slice(b"\r\n");
    assert_eq!(
        feed(&lines, &[]),
        failed(b"", ChunkError::TrailersTooLong { limit })
    );
}
