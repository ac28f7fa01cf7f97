//! Hostile peers after a valid upgrade: each bad frame, sent whole, gets its exact close code, the
//! other side gets a proper close frame, and none of the bad frame's bytes are forwarded.

mod support;

use support::*;

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    code: u16,
    kind: &'static str,
    /// Valid frames sent before the bad one, which the backend does receive.
    forwarded_before: Vec<(u8, Vec<u8>)>,
}

fn case(name: &'static str, bytes: Vec<u8>, code: u16, kind: &'static str) -> Case {
    Case {
        name,
        bytes,
        code,
        kind,
        forwarded_before: vec![],
    }
}

fn client_cases() -> Vec<Case> {
    let mut non_minimal = vec![0x81, 0x80 | 126, 0, 5];
    non_minimal.extend_from_slice(&KEY);
    non_minimal.extend(b"hello".iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    vec![
        case(
            "unmasked frame",
            frame(0x81, b"hi", None),
            1002,
            "unmasked_frame",
        ),
        case(
            "reserved opcode 3",
            client_frame(0x83, b""),
            1002,
            "reserved_opcode",
        ),
        case(
            "reserved opcode 11",
            client_frame(0x8B, b""),
            1002,
            "reserved_opcode",
        ),
        case(
            "RSV1 without extension",
            client_frame(0xC1, b"hi"),
            1002,
            "reserved_bits",
        ),
        case(
            "126-byte ping",
            client_frame(0x89, &[0; 126]),
            1002,
            "control_too_long",
        ),
        case(
            "fragmented ping",
            client_frame(0x09, b"p"),
            1002,
            "fragmented_control",
        ),
        case(
            "continuation with no start",
            client_frame(0x80, b"x"),
            1002,
            "bad_continuation",
        ),
        case(
            "text with invalid UTF-8",
            client_frame(0x81, &[0x61, 0xC0, 0x80]),
            1007,
            "invalid_utf8",
        ),
        Case {
            name: "invalid UTF-8 split across fragments",
            bytes: [
                client_frame(0x01, &[0xE2, 0x82]),
                client_frame(0x80, &[0x41]),
            ]
            .concat(),
            code: 1007,
            kind: "invalid_utf8",
            forwarded_before: vec![(0x01, vec![0xE2, 0x82])],
        },
        case(
            "close code 1005 on the wire",
            client_frame(0x88, &1005u16.to_be_bytes()),
            1002,
            "bad_close",
        ),
        case(
            "close code 999",
            client_frame(0x88, &999u16.to_be_bytes()),
            1002,
            "bad_close",
        ),
        case(
            "close with a 1-byte payload",
            client_frame(0x88, &[0x03]),
            1002,
            "bad_close",
        ),
        case(
            "close reason not UTF-8",
            client_frame(0x88, &[0x03, 0xE8, 0xFF]),
            1007,
            "invalid_utf8",
        ),
        case(
            "16-bit length for 5 bytes",
            non_minimal,
            1002,
            "non_minimal_length",
        ),
        case(
            "frame over max_frame_size",
            client_frame(0x82, &[0; 1025]),
            1009,
            "frame_too_big",
        ),
        Case {
            name: "message over max_message_size",
            bytes: [
                client_frame(0x02, &[1; 1024]),
                client_frame(0x80, &[2; 1024]),
            ]
            .concat(),
            code: 1009,
            kind: "message_too_big",
            forwarded_before: vec![(0x02, vec![1; 1024])],
        },
    ]
}

#[tokio::test]
async fn hostile_client_frames_get_their_close_codes() {
    for case in client_cases() {
        let (backend, seen) = raw_backend(switching, vec![]).await;
        let (running, addr) =
            start_for(backend, "{ max_frame_size: 1KiB, max_message_size: 1500 }").await;
        let mut client = RawClient::connect(addr).await;
        client.send(&case.bytes).await;

        let code = read_close(&mut client.stream).await;
        assert_eq!(
            code,
            Some(case.code),
            "{}: close code to the client",
            case.name
        );
        // After its close frame wsgate ends the client connection.
        let rest = read_to_end(&mut client.stream).await;
        assert!(
            rest.is_empty(),
            "{}: bytes after the close: {rest:x?}",
            case.name
        );

        eventually(case.name, || seen.lock().unwrap().closed.then_some(())).await;
        let bytes = seen.lock().unwrap().bytes.clone();
        let mut expected = case.forwarded_before.clone();
        expected.push((0x88, 1001u16.to_be_bytes().to_vec()));
        assert_eq!(
            parse_frames(&bytes),
            expected,
            "{}: what the backend got",
            case.name
        );

        let metrics = scrape(running.admin_addr().unwrap()).await;
        let violations = metric(
            &metrics,
            "wsgate_ws_protocol_violations_total",
            &[
                ("route", "echo"),
                ("direction", "client_to_upstream"),
                ("kind", case.kind),
            ],
        );
        assert_eq!(violations, Some(1.0), "{}: violation counter", case.name);
    }
}

#[tokio::test]
async fn masked_frame_from_the_backend() {
    let masked = frame(0x81, b"hi", Some(KEY));
    let (backend, seen) = raw_backend(switching, masked).await;
    let (running, addr) = start_for(backend, "{}").await;
    let mut client = RawClient::connect(addr).await;

    assert_eq!(read_close(&mut client.stream).await, Some(1014));
    eventually("backend connection closed", || {
        seen.lock().unwrap().closed.then_some(())
    })
    .await;
    let bytes = seen.lock().unwrap().bytes.clone();
    assert_eq!(
        parse_frames(&bytes),
        vec![(0x88, 1002u16.to_be_bytes().to_vec())]
    );
    assert_ne!(bytes[1] & 0x80, 0, "frames toward the backend are masked");

    let metrics = scrape(running.admin_addr().unwrap()).await;
    let labels = [
        ("route", "echo"),
        ("direction", "upstream_to_client"),
        ("kind", "masked_frame"),
    ];
    assert_eq!(
        metric(&metrics, "wsgate_ws_protocol_violations_total", &labels),
        Some(1.0)
    );
}

#[tokio::test]
async fn backend_rules_mirror_client_rules() {
    // Unmasked is right for a backend; the other rules hold in this direction too.
    let cases = [
        (frame(0x83, b"", None), 1002u16, "reserved_opcode"),
        (frame(0x81, &[0xFF], None), 1007, "invalid_utf8"),
        (frame(0x89, &[0; 126], None), 1002, "control_too_long"),
        (frame(0x80, b"x", None), 1002, "bad_continuation"),
        (frame(0x88, &1006u16.to_be_bytes(), None), 1002, "bad_close"),
    ];
    for (bytes, code, kind) in cases {
        let (backend, seen) = raw_backend(switching, bytes).await;
        let (running, addr) = start_for(backend, "{}").await;
        let mut client = RawClient::connect(addr).await;
        assert_eq!(read_close(&mut client.stream).await, Some(1014), "{kind}");
        eventually(kind, || seen.lock().unwrap().closed.then_some(())).await;
        let bytes = seen.lock().unwrap().bytes.clone();
        assert_eq!(
            parse_frames(&bytes),
            vec![(0x88, code.to_be_bytes().to_vec())],
            "{kind}"
        );
        let metrics = scrape(running.admin_addr().unwrap()).await;
        let labels = [
            ("route", "echo"),
            ("direction", "upstream_to_client"),
            ("kind", kind),
        ];
        assert_eq!(
            metric(&metrics, "wsgate_ws_protocol_violations_total", &labels),
            Some(1.0),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn valid_frames_before_a_bad_one_are_delivered() {
    let (backend, seen) = raw_backend(switching, vec![]).await;
    let (_running, addr) = start_for(backend, "{}").await;
    let mut client = RawClient::connect(addr).await;
    let bytes = [
        client_frame(0x81, b"one"),
        client_frame(0x82, b"two"),
        frame(0x81, b"bad", None),
    ]
    .concat();
    client.send(&bytes).await;
    assert_eq!(read_close(&mut client.stream).await, Some(1002));
    eventually("backend closed", || {
        seen.lock().unwrap().closed.then_some(())
    })
    .await;
    let got = parse_frames(&seen.lock().unwrap().bytes);
    assert_eq!(
        got,
        vec![
            (0x81, b"one".to_vec()),
            (0x82, b"two".to_vec()),
            (0x88, 1001u16.to_be_bytes().to_vec())
        ]
    );
}

#[tokio::test]
async fn client_vanishing_without_close_gets_the_backend_a_1001() {
    let (backend, seen) = raw_backend(switching, vec![]).await;
    let (_running, addr) = start_for(backend, "{}").await;
    let client = RawClient::connect(addr).await;
    drop(client);
    eventually("backend closed", || {
        seen.lock().unwrap().closed.then_some(())
    })
    .await;
    let got = parse_frames(&seen.lock().unwrap().bytes);
    assert_eq!(got, vec![(0x88, 1001u16.to_be_bytes().to_vec())]);
}

#[tokio::test]
async fn violation_inside_a_long_frame_aborts_the_backend_without_a_close() {
    let (backend, seen) = raw_backend(switching, vec![]).await;
    let (_running, addr) = start_for(backend, "{}").await;
    let mut client = RawClient::connect(addr).await;
    // A 100 KiB text frame (larger than the relay buffer, so it streams) whose last byte is bad.
    let mut payload = vec![b'a'; 100 * 1024];
    *payload.last_mut().unwrap() = 0xFF;
    let bytes = client_frame(0x81, &payload);
    client.send(&bytes[..50 * 1024]).await;
    eventually("part of the frame forwarded", || {
        (seen.lock().unwrap().bytes.len() >= 32 * 1024).then_some(())
    })
    .await;
    client.send(&bytes[50 * 1024..]).await;

    assert_eq!(read_close(&mut client.stream).await, Some(1007));
    eventually("backend cut", || seen.lock().unwrap().closed.then_some(())).await;
    let got = seen.lock().unwrap().bytes.clone();
    // The backend got a prefix of the frame and nothing else: no close frame inside a frame.
    assert!(
        got.len() < bytes.len(),
        "{} of {} bytes",
        got.len(),
        bytes.len()
    );
    assert_eq!(got[..], bytes[..got.len()]);
}

#[tokio::test]
async fn tunnel_ends_promptly_when_the_client_vanishes() {
    // Regression: once one pump ended, a closed inbox starved the other pump's reads until the 5 s
    // close grace. The backend's close reply and FIN must end the tunnel at once.
    let (backend, seen) = echo_backend().await;
    let (running, addr) = start_for(backend, "{}").await;
    let client = RawClient::connect(addr).await;
    let started = std::time::Instant::now();
    drop(client);
    tunnels_closed(&running, "echo").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(seen.lock().unwrap().messages.iter().any(|m| m.is_close()));
}
