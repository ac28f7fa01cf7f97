//! RFC 6455 conformance, table-driven, in both directions: each case is bytes a raw peer sends after the
//! upgrade, and what must follow at BOTH ends: the exact frames the other side receives, the close code
//! (if any) the sender gets, whether each TCP connection ends, and the metric that moved. A rule that
//! applies to both senders runs twice, with the masking rule inverted.

mod support;

use std::time::Duration;

use support::*;
use tokio::io::AsyncWriteExt;

#[path = "conformance/cases.rs"]
mod cases;

use cases::*;

const WS: &str = "{ max_frame_size: 64KiB, max_message_size: 128KiB }";

/// Frames for a failure message: opcode byte, length and the first bytes.
fn show(frames: &[(u8, Vec<u8>)]) -> String {
    let parts: Vec<String> = frames
        .iter()
        .map(|(b, p)| format!("{b:02x}:{}b{:02x?}", p.len(), &p[..p.len().min(6)]))
        .collect();
    format!("[{}]", parts.join(" "))
}

/// Runs one case: returns a description of what went wrong, or None.
async fn run(dir: Dir, case: Case) -> Option<String> {
    let after = if dir == Dir::UpstreamSends {
        case.bytes.clone()
    } else {
        vec![]
    };
    let (backend, seen, outbox) = raw_backend_with_outbox(switching, after).await;
    let (running, addr) = start_for(backend, WS).await;
    let mut client = RawClient::connect(addr).await;
    if dir == Dir::ClientSends {
        client.stream.write_all(&case.bytes).await.unwrap();
    }
    let sender_dir = match dir {
        Dir::ClientSends => "client_to_upstream",
        Dir::UpstreamSends => "upstream_to_client",
    };
    let fail = |what: String| Some(format!("{dir:?} / {}: {what}", case.name));
    // What the other side received, and whether its connection ended.
    let other_side = |wait_closed: bool| {
        let seen = seen.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            loop {
                let done = !wait_closed || seen.lock().unwrap().closed;
                if done || tokio::time::Instant::now() > deadline {
                    let s = seen.lock().unwrap();
                    return (parse_frames(&s.bytes), s.closed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let metrics = |running: &wsgate::Running| running.metrics_text();
    match case.expect {
        Expect::Forwarded(expected) if dir == Dir::ClientSends => {
            let got = eventually_frames(&seen, expected.len()).await;
            if got != expected {
                return fail(format!(
                    "backend got {}, want {}",
                    show(&got),
                    show(&expected)
                ));
            }
            if seen.lock().unwrap().closed {
                return fail("the backend connection ended".into());
            }
            // Nothing came back to the client: the backend's marker is the next thing it gets.
            outbox.send(frame(0x88, &marker(), None)).unwrap();
            match client.frame().await {
                Some((0x88, got)) if got == marker() => {}
                other => return fail(format!("the client got {}", show(&Vec::from_iter(other)))),
            }
            let got = parse_frames(&seen.lock().unwrap().bytes);
            if got != expected {
                return fail(format!("backend then got {}", show(&got)));
            }
        }
        Expect::Forwarded(expected) => {
            for want in &expected {
                match client.frame().await {
                    Some(got) if got == *want => {}
                    other => {
                        let got: Vec<_> = other.into_iter().collect();
                        return fail(format!(
                            "client got {}, want {}",
                            show(&got),
                            show(std::slice::from_ref(want))
                        ));
                    }
                }
            }
            if let Some(first) = client_marker_first(&mut client, &seen).await {
                return fail(format!("something came back to the backend: {first}"));
            }
        }
        Expect::Answered(payload) => {
            match client.frame().await {
                Some((0x8A, got)) if got == payload => {}
                other => {
                    return fail(format!(
                        "client got {}, want a pong",
                        show(&other.into_iter().collect::<Vec<_>>())
                    ))
                }
            }
            if let Some(first) = client_marker_first(&mut client, &seen).await {
                return fail(format!("the ping reached the backend: {first}"));
            }
            let labels = [("route", "echo"), ("direction", sender_dir)];
            if metric(
                &metrics(&running),
                "wsgate_ws_pings_answered_total",
                &labels,
            ) != Some(1.0)
            {
                return fail("pings_answered_total did not move".into());
            }
            return None;
        }
        Expect::Violation {
            code,
            kind,
            forwarded_first,
        } => {
            let (sender_code, receiver_frames, receiver_closed) = match dir {
                Dir::ClientSends => {
                    let code = read_close(&mut client.stream).await;
                    let rest = read_to_end(&mut client.stream).await;
                    if !rest.is_empty() {
                        return fail(format!("{} bytes after the close", rest.len()));
                    }
                    let (frames, closed) = other_side(true).await;
                    (code, frames, closed)
                }
                Dir::UpstreamSends => {
                    let mut received = Vec::new();
                    loop {
                        match client.frame().await {
                            Some(frame) if frame.0 & 0x0F == 0x8 => {
                                received.push(frame);
                                break;
                            }
                            Some(frame) => received.push(frame),
                            None => break,
                        }
                    }
                    let client_closed = read_to_end(&mut client.stream).await.is_empty();
                    let (frames, _) = other_side(true).await;
                    let code = frames
                        .first()
                        .filter(|(b, _)| b & 0x0F == 0x8)
                        .map(|(_, p)| u16::from_be_bytes([p[0], p[1]]));
                    (code, received, client_closed)
                }
            };
            if sender_code != Some(code) {
                return fail(format!("the sender got close {sender_code:?}, want {code}"));
            }
            let away = match dir {
                Dir::ClientSends => 1001u16,
                Dir::UpstreamSends => 1014,
            };
            let mut want = forwarded_first;
            want.push((0x88, away.to_be_bytes().to_vec()));
            if receiver_frames != want {
                return fail(format!(
                    "the other side got {receiver_frames:x?}, want {want:x?}"
                ));
            }
            if !receiver_closed {
                return fail("the other side's connection did not end".into());
            }
            let labels = [("route", "echo"), ("direction", sender_dir), ("kind", kind)];
            let moved = metric(
                &metrics(&running),
                "wsgate_ws_protocol_violations_total",
                &labels,
            );
            if moved != Some(1.0) {
                return fail(format!("violations_total{{kind={kind}}} = {moved:?}"));
            }
            return None;
        }
        Expect::DroppedAfterClose(expected) => {
            let labels = [
                ("route", "echo"),
                ("direction", sender_dir),
                ("kind", "data_after_close"),
            ];
            let counted = || async {
                let deadline = tokio::time::Instant::now() + TIMEOUT;
                loop {
                    let n = metric(
                        &metrics(&running),
                        "wsgate_ws_protocol_violations_total",
                        &labels,
                    );
                    if n == Some(1.0) || tokio::time::Instant::now() > deadline {
                        return n;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            };
            let got = match dir {
                Dir::ClientSends => eventually_frames(&seen, expected.len()).await,
                Dir::UpstreamSends => {
                    let mut got = Vec::new();
                    for _ in 0..expected.len() {
                        got.extend(client.frame().await);
                    }
                    got
                }
            };
            if got != expected {
                return fail(format!("got {}, want {}", show(&got), show(&expected)));
            }
            // The dropped bytes were read and counted; then the close handshake completes, and once
            // the tunnel has ended, what the other side got is final.
            if counted().await != Some(1.0) {
                return fail("data_after_close was not counted".into());
            }
            match dir {
                Dir::ClientSends => {
                    outbox.send(frame(0x88, &marker(), None)).unwrap();
                    match client.frame().await {
                        Some((0x88, got)) if got == marker() => {}
                        other => {
                            return fail(format!("the client got {}", show(&Vec::from_iter(other))))
                        }
                    }
                    let (frames, closed) = other_side(true).await;
                    if !closed {
                        return fail("the backend connection did not end".into());
                    }
                    if frames != expected {
                        return fail(format!(
                            "bytes after the close reached the backend: {}",
                            show(&frames)
                        ));
                    }
                }
                Dir::UpstreamSends => {
                    client.send(&client_frame(0x88, &marker())).await;
                    let rest = read_to_end(&mut client.stream).await;
                    if !rest.is_empty() {
                        return fail(format!(
                            "the client got more: {}",
                            show(&parse_frames(&rest))
                        ));
                    }
                }
            }
            return None;
        }
    }
    // Forwarded cases: the frame counters moved for the sender.
    let text = metrics(&running);
    let total: f64 = ["continuation", "text", "binary", "close", "ping", "pong"]
        .iter()
        .filter_map(|op| {
            metric(
                &text,
                "wsgate_ws_frames_total",
                &[("route", "echo"), ("direction", sender_dir), ("opcode", op)],
            )
        })
        .sum();
    if total == 0.0 {
        return fail("frames_total did not move".into());
    }
    None
}

/// Waits until the backend has received `n` frames.
async fn eventually_frames(
    seen: &std::sync::Arc<std::sync::Mutex<RawSeen>>,
    n: usize,
) -> Vec<(u8, Vec<u8>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let frames = parse_frames(&seen.lock().unwrap().bytes);
        if frames.len() >= n || tokio::time::Instant::now() > deadline {
            return frames;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A close payload no case sends: 1000 and "marker".
fn marker() -> Vec<u8> {
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"marker");
    payload
}

/// The client sends a marker close after the case; the backend must get it as its first frame.
/// Returns what the backend got instead, if anything (frames are relayed in order, so anything
/// forwarded before the marker is seen first).
async fn client_marker_first(
    client: &mut RawClient,
    seen: &std::sync::Arc<std::sync::Mutex<RawSeen>>,
) -> Option<String> {
    client.send(&client_frame(0x88, &marker())).await;
    let got = eventually_frames(seen, 1).await;
    (got.first() != Some(&(0x88, marker()))).then(|| show(&got))
}

async fn run_all(dir: Dir) -> (usize, Vec<String>) {
    let mut cases = cases(dir);
    let count = cases.len();
    // CONFORMANCE_CASE=substring runs only matching cases (for debugging one).
    if let Ok(only) = std::env::var("CONFORMANCE_CASE") {
        cases.retain(|c| c.name.contains(&only));
    }
    let mut failures = Vec::new();
    // A few at a time: each case has its own wsgate and peers.
    for chunk in cases.chunks(8) {
        let runs: Vec<_> = chunk
            .iter()
            .map(|c| Case {
                name: c.name.clone(),
                bytes: c.bytes.clone(),
                expect: c.expect.clone(),
            })
            .map(|c| tokio::spawn(run(dir, c)))
            .collect();
        for r in runs {
            failures.extend(r.await.unwrap());
        }
    }
    (count, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_to_upstream() {
    let (count, failures) = run_all(Dir::ClientSends).await;
    assert!(count >= 80, "{count} cases");
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_to_client() {
    let (count, failures) = run_all(Dir::UpstreamSends).await;
    assert!(count >= 80, "{count} cases");
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
