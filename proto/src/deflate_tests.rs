//! RFC 7692 negotiation rules and the streaming inflater, with messages compressed here by flate2.

use super::*;
use flate2::{Compress, Compression, FlushCompress};

fn offer(text: &str) -> Offer {
    parse_offer(text)
        .expect("permessage-deflate")
        .expect("valid")
}

#[test]
fn offers() {
    assert_eq!(parse_offer("x-other; a=1"), None);
    let o = offer("permessage-deflate; client_max_window_bits; server_max_window_bits=10");
    assert_eq!(o.client_max_window_bits, ClientBits::Any);
    assert_eq!(o.server_max_window_bits, Some(10));
    assert_eq!(
        offer("permessage-deflate; client_max_window_bits=9").client_max_window_bits,
        ClientBits::Max(9)
    );
    for bad in [
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; unknown",
    ] {
        assert_eq!(parse_offer(bad), Some(Err(())), "{bad}");
    }
}

#[test]
fn responses_follow_section_7_1() {
    let plain = [offer("permessage-deflate")];
    let with_client_bits = [offer("permessage-deflate; client_max_window_bits")];
    let asked_no_takeover = [offer("permessage-deflate; server_no_context_takeover")];
    let limited = [offer(
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12",
    )];
    let ok = |r: &str, offers: &[Offer]| accept_response(r, offers).unwrap();
    assert_eq!(ok("permessage-deflate", &plain), Agreed::default());
    assert!(
        ok("permessage-deflate; server_no_context_takeover", &plain).server_no_context_takeover
    );
    assert!(
        ok("permessage-deflate; client_no_context_takeover", &plain).client_no_context_takeover
    );
    assert_eq!(
        ok("permessage-deflate; server_max_window_bits=12", &plain).server_max_window_bits,
        Some(12)
    );
    assert_eq!(
        ok(
            "permessage-deflate; client_max_window_bits=10",
            &with_client_bits
        )
        .client_max_window_bits,
        Some(10)
    );
    assert!(
        ok(
            "permessage-deflate; server_no_context_takeover",
            &asked_no_takeover
        )
        .server_no_context_takeover
    );
    assert!(
        ok(
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=12",
            &limited
        )
        .server_max_window_bits
            == Some(9)
    );
    for (response, offers) in [
        ("x-other", &plain[..]),
        ("permessage-deflate; client_max_window_bits=10", &plain),
        ("permessage-deflate; client_max_window_bits=13", &limited),
        ("permessage-deflate; server_max_window_bits=11", &limited),
        ("permessage-deflate", &limited),
        ("permessage-deflate", &asked_no_takeover),
        ("permessage-deflate; server_max_window_bits=20", &plain),
        ("permessage-deflate; foo", &plain),
        (
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            &plain,
        ),
    ] {
        assert!(accept_response(response, offers).is_err(), "{response}");
    }
    // Any one of several offers may be answered.
    let two = [
        offer("permessage-deflate; client_max_window_bits=9"),
        offer("permessage-deflate"),
    ];
    assert!(accept_response("permessage-deflate", &two).is_ok());
}

/// A message compressed as a sender would: sync flush, then the 00 00 FF FF tail removed (§7.2.1).
fn compress(compressor: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    compressor
        .compress_vec(data, &mut out, FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&[0x00, 0x00, 0xFF, 0xFF]));
    out.truncate(out.len() - 4);
    out
}

fn inflate(inflater: &mut Inflater, pieces: &[&[u8]]) -> Result<Vec<u8>, CorruptData> {
    let mut all = Vec::new();
    for piece in pieces {
        inflater.feed(piece, &mut |out| {
            all.extend_from_slice(out);
            true
        })?;
    }
    inflater.finish_message(&mut |out| {
        all.extend_from_slice(out);
        true
    })?;
    Ok(all)
}

#[test]
fn inflates_messages_with_and_without_context_takeover() {
    let messages: Vec<Vec<u8>> = vec![
        b"hello hello hello hello".to_vec(),
        "κόσμε κόσμε κόσμε".as_bytes().to_vec(),
        (0..20_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect(),
        b"hello hello hello hello".to_vec(),
    ];
    // Context takeover: one compressor for the whole session.
    let mut compressor = Compress::new(Compression::default(), false);
    let mut inflater = Inflater::new(false);
    for m in &messages {
        let wire = compress(&mut compressor, m);
        // Fed in small pieces, as frames and reads split it.
        let pieces: Vec<&[u8]> = wire.chunks(7).collect();
        assert_eq!(&inflate(&mut inflater, &pieces).unwrap(), m);
    }
    // No context takeover: a fresh compressor per message.
    let mut inflater = Inflater::new(true);
    for m in &messages {
        let mut fresh = Compress::new(Compression::best(), false);
        let wire = compress(&mut fresh, m);
        assert_eq!(&inflate(&mut inflater, &[&wire]).unwrap(), m);
    }
}

#[test]
fn corrupt_data_and_early_stop() {
    let mut inflater = Inflater::new(true);
    assert_eq!(
        inflate(&mut inflater, &[&[0xFF, 0xFF, 0xFF, 0xFF]]),
        Err(CorruptData)
    );
    // A bomb: 1 MiB of zeros compresses to about 1 KiB; the sink stops it after 64 KiB.
    let mut compressor = Compress::new(Compression::best(), false);
    let wire = compress(&mut compressor, &vec![0u8; 1 << 20]);
    assert!(wire.len() < 2048);
    let mut inflater = Inflater::new(false);
    let mut seen = 0usize;
    inflater
        .feed(&wire, &mut |out| {
            seen += out.len();
            seen < 64 << 10
        })
        .unwrap();
    assert!(seen < (64 << 10) + 4096, "{seen}");
}
