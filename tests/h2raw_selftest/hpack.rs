//! The HPACK half of the raw peer against RFC 7541: the Appendix C examples (Huffman requests and
//! responses, with evictions), the Huffman table itself, and each decoding error.

use crate::support::h2raw::hpack::{self, HpackError};
use crate::support::h2raw::huffman::{self, HuffmanError, CODES};
use crate::support::h2raw::{decode_headers, encode_headers, Decoder};

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn requests_with_huffman_rfc_7541_c4() {
    let mut decoder = Decoder::default();
    let cases = [
        ("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", vec![], 57),
        (
            "8286 84be 5886 a8eb 1064 9cbf",
            vec![("cache-control", "no-cache")],
            110,
        ),
        (
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            vec![("custom-key", "custom-value")],
            164,
        ),
    ];
    for (i, (bytes, extra, size)) in cases.into_iter().enumerate() {
        let (scheme, path) = if i == 2 {
            ("https", "/index.html")
        } else {
            ("http", "/")
        };
        let mut want = vec![
            (":method", "GET"),
            (":scheme", scheme),
            (":path", path),
            (":authority", "www.example.com"),
        ];
        want.extend(extra);
        let got = decode_headers(&mut decoder, &hex(bytes)).unwrap();
        assert_eq!(got, pairs(&want), "C.4.{}", i + 1);
        assert_eq!(decoder.dynamic_table().1, size, "C.4.{} table size", i + 1);
    }
}

#[test]
fn responses_with_huffman_and_evictions_rfc_7541_c6() {
    // SETTINGS_HEADER_TABLE_SIZE = 256, so entries are evicted.
    let mut decoder = Decoder::new(256);
    let first = decode_headers(
        &mut decoder,
        &hex(
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
              2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        ),
    )
    .unwrap();
    let mut want = vec![
        (":status", "302"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
        ("location", "https://www.example.com"),
    ];
    assert_eq!(first, pairs(&want));
    assert_eq!(decoder.dynamic_table().1, 222);

    let second = decode_headers(&mut decoder, &hex("4883 640e ffc1 c0bf")).unwrap();
    want[0] = (":status", "307");
    assert_eq!(second, pairs(&want));
    assert_eq!(decoder.dynamic_table().1, 222);

    let third = decode_headers(
        &mut decoder,
        &hex(
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
              77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
              9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ),
    )
    .unwrap();
    let want = [
        (":status", "200"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
        ("location", "https://www.example.com"),
        ("content-encoding", "gzip"),
        (
            "set-cookie",
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
        ),
    ];
    assert_eq!(third, pairs(&want));
    let (table, size) = decoder.dynamic_table();
    assert_eq!(size, 215);
    let names: Vec<&str> = table.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["set-cookie", "content-encoding", "date"]);
}

#[test]
fn the_encoder_writes_plain_literals_without_indexing() {
    let block = encode_headers(&[("custom-key", "custom-header"), ("X-Upper", "")]);
    let mut want = vec![0x00, 0x0a];
    want.extend_from_slice(b"custom-key");
    want.push(0x0d);
    want.extend_from_slice(b"custom-header");
    want.extend_from_slice(&[0x00, 0x07]);
    want.extend_from_slice(b"X-Upper");
    want.push(0x00);
    assert_eq!(block, want);
    let mut decoder = Decoder::default();
    let back = decode_headers(&mut decoder, &block).unwrap();
    assert_eq!(
        back,
        pairs(&[("custom-key", "custom-header"), ("X-Upper", "")])
    );
    // Without indexing: the peer's table stays empty.
    assert_eq!(decoder.dynamic_table().1, 0);
    // A value longer than the 7-bit prefix takes a multi-byte length.
    let long = "v".repeat(300);
    let block = encode_headers(&[("k", &long)]);
    assert_eq!(&block[3..6], &[0x7f, 0xad, 0x01]);
    assert_eq!(decode_headers(&mut decoder, &block).unwrap()[0].1, long);
}

#[test]
fn the_huffman_table_is_a_complete_prefix_code() {
    // Kraft: the code words fill the 30-bit space exactly, so every bit string decodes.
    let space: u64 = CODES.iter().map(|&(_, len)| 1u64 << (30 - len)).sum();
    assert_eq!(space, 1 << 30);
    for (i, &(code, len)) in CODES.iter().enumerate() {
        assert!(u64::from(code) < 1u64 << len, "symbol {i}");
    }
    let every: Vec<u8> = (0..=255).collect();
    assert_eq!(huffman::decode(&huffman::encode(&every)).unwrap(), every);
    assert_eq!(
        huffman::encode(b"www.example.com"),
        hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff")
    );
}

#[test]
fn huffman_errors_rfc_7541_5_2() {
    // 'a' is 00011: three bits of padding, all ones.
    assert_eq!(huffman::decode(&[0x1f]).unwrap(), b"a");
    assert_eq!(huffman::decode(&[0x18]), Err(HuffmanError::BadPadding));
    assert_eq!(
        huffman::decode(&[0x1f, 0xff]),
        Err(HuffmanError::BadPadding)
    );
    assert_eq!(huffman::decode(&[0xff; 4]), Err(HuffmanError::Eos));
}

#[test]
fn decoding_errors_name_their_cause() {
    let mut d = Decoder::new(100);
    type Check = fn(&HpackError) -> bool;
    let cases: Vec<(Vec<u8>, Check)> = vec![
        (vec![0x80], |e| matches!(e, HpackError::ZeroIndex)),
        (vec![0xbe], |e| {
            matches!(e, HpackError::IndexOutOfRange { index: 62, len: 61 })
        }),
        (vec![0x00, 0x05, b'a'], |e| {
            matches!(e, HpackError::Truncated)
        }),
        (vec![0x3f, 0x50], |e| {
            matches!(
                e,
                HpackError::TableSizeTooLarge {
                    size: 111,
                    limit: 100
                }
            )
        }),
        (vec![0x82, 0x20], |e| {
            matches!(e, HpackError::SizeUpdateAfterField)
        }),
        (vec![0x00, 0x81, 0x18, 0x00], |e| {
            matches!(e, HpackError::Huffman(_))
        }),
        (vec![0x00, 0x01, 0xff, 0x00], |e| {
            matches!(e, HpackError::NotUtf8(_))
        }),
        (vec![0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f], |e| {
            matches!(e, HpackError::IntegerOverflow)
        }),
    ];
    for (block, check) in cases {
        let err = decode_headers(&mut d, &block).unwrap_err();
        assert!(check(&err), "{block:02x?}: {err:?}");
    }
    // A size update within the limit evicts down to it.
    let mut d = Decoder::default();
    decode_headers(&mut d, &[0x40, 0x01, b'k', 0x01, b'v']).unwrap();
    assert_eq!(d.dynamic_table().1, 34);
    decode_headers(&mut d, &[0x20]).unwrap();
    assert_eq!(d.dynamic_table().1, 0);
    let mut at = 0;
    assert_eq!(hpack::decode_int(&[0x7f, 0x00], &mut at, 7).unwrap(), 127);
}
