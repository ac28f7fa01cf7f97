//! `websocket.remask: true` at the byte level: the backend sees masking keys of wsgate's own, one
//! per frame, and exactly the client's unmasked payloads, for frames split across reads and for
//! fragmented messages (RFC 6455 §10.3).

mod support;

use support::*;

/// The client's frames: (first byte, payload). A text message in three fragments with "é" split
/// between two of them and a pong between fragments, a binary frame, then a masked close.
fn small_frames() -> Vec<(u8, Vec<u8>)> {
    vec![
        (0x81, b"hello".to_vec()),
        (0x01, b"caf\xC3".to_vec()),
        (0x8A, b"unsolicited pong".to_vec()),
        (0x00, b"\xA9 ".to_vec()),
        (0x80, "au lait ✓".as_bytes().to_vec()),
        (0x82, (0..=255u8).collect()),
    ]
}

async fn run(websocket: &str) -> (Vec<(u8, Option<[u8; 4]>, Vec<u8>)>, Vec<(u8, Vec<u8>)>) {
    let (backend, seen) = raw_backend(switching, vec![]).await;
    let (_running, addr) = start_for(backend, websocket).await;
    let mut client = RawClient::connect(addr).await;
    let mut sent = small_frames();
    for (first, payload) in &sent {
        client.send(&client_frame(*first, payload)).await;
    }
    // A frame larger than the relay's buffer streams through in pieces; the client writes it in
    // three parts split off the key's phase, and each part reaches the backend before the next
    // is written, so wsgate reads it across several reads.
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let wire = client_frame(0x82, &big);
    sent.push((0x82, big));
    let before = seen.lock().unwrap().bytes.len();
    let mut written = 0;
    for end in [10_001, 50_003, wire.len()] {
        client.send(&wire[written..end]).await;
        written = end;
        let want = before + end.min(wire.len());
        if end < wire.len() {
            eventually("the backend to receive the part", || {
                (seen.lock().unwrap().bytes.len() >= want - 64).then_some(())
            })
            .await;
        }
    }
    client.send(&client_frame(0x88, &[0x03, 0xE8])).await;
    sent.push((0x88, vec![0x03, 0xE8]));
    let count = sent.len();
    let frames = eventually("every frame at the backend", || {
        let frames = parse_frames_keyed(&seen.lock().unwrap().bytes);
        (frames.len() >= count).then_some(frames)
    })
    .await;
    (frames, sent)
}

#[tokio::test]
async fn backend_sees_fresh_keys_and_the_same_payloads() {
    let (frames, sent) = run("{ remask: true }").await;
    assert_eq!(frames.len(), sent.len());
    let mut keys = Vec::new();
    for ((first, key, payload), (want_first, want)) in frames.iter().zip(&sent) {
        assert_eq!(first, want_first);
        assert_eq!(payload, want, "payload of frame {first:#x}");
        let key = key.expect("frames toward the backend are masked");
        assert_ne!(key, KEY, "frame {first:#x} kept the client's key");
        keys.push(key);
    }
    let count = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), count, "a key was used twice");
}

#[tokio::test]
async fn without_remask_the_client_keys_pass_through() {
    let (frames, sent) = run("{ remask: false }").await;
    for ((_, key, payload), (_, want)) in frames.iter().zip(&sent) {
        assert_eq!(*key, Some(KEY));
        assert_eq!(payload, want);
    }
}
