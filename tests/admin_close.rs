//! Closing tunnels through the admin API: `POST /tunnels/{id}/close` (default 1001 at both peers, a
//! code and reason of the operator's, the answer once both handshakes are done, every refusal) and
//! `POST /tunnels/close` (by route, all, the spread, every refusal), with
//! `wsgate_ws_admin_closes_total` counting.

mod admin;
mod support;

use std::sync::{Arc, Mutex};

use admin::{answer_close, only_id, two_routes, Admin};
use serde_json::json;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

fn admin_closes(running: &wsgate::Running, route: &str) -> Option<f64> {
    let text = running.metrics_text();
    metric(&text, "wsgate_ws_admin_closes_total", &[("route", route)])
}

/// The code and reason of the close frame the echo backend got, once it got one.
async fn backend_close(seen: &Arc<Mutex<Seen>>) -> (u16, String) {
    eventually("the backend's close", || {
        seen.lock().unwrap().messages.iter().find_map(|m| match m {
            Message::Close(Some(frame)) => Some((u16::from(frame.code), frame.reason.to_string())),
            _ => None,
        })
    })
    .await
}

/// `POST` in a task of its own: a close's answer waits for the peers' handshake.
fn post_later(admin: &Admin, target: String) -> tokio::task::JoinHandle<admin::Answer> {
    let admin = admin.clone();
    tokio::spawn(async move { admin.post(&target).await })
}

#[tokio::test]
async fn a_close_sends_1001_to_both_peers_and_answers_closed() {
    let (backend, seen) = echo_backend().await;
    let (running, addr) = start_for(backend, "{}").await;
    let admin = Admin::of(&running);
    // Exported at 0 for a configured route before any close.
    assert_eq!(admin_closes(&running, "echo"), Some(0.0));
    let mut client = RawClient::connect(addr).await;
    let id = only_id(&admin, "echo").await;
    let post = post_later(&admin, format!("/tunnels/{id}/close"));
    // The close frame has reached the client, which has not answered yet: closing.
    let (first, payload) = read_frame(&mut client.stream).await.expect("a close");
    assert_eq!(first, 0x88);
    assert_eq!(payload, 1001u16.to_be_bytes());
    let shown = admin.get(&format!("/tunnels/{id}")).await;
    assert_eq!(shown.json()["state"], "closing", "{}", shown.body);
    let answered = tokio::time::Instant::now();
    client.send(&client_frame(0x88, &payload)).await;
    let answer = post.await.unwrap();
    // Once both peers have answered, wsgate ends the tunnel: the close grace (5 s) is not waited.
    let took = answered.elapsed();
    assert!(took < std::time::Duration::from_secs(4), "{took:?}");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let t = answer.json();
    assert_eq!(
        (t["id"].as_u64(), &t["state"]),
        (Some(id), &json!("closed"))
    );
    assert_eq!(backend_close(&seen).await, (1001, String::new()));
    assert_eq!(admin_closes(&running, "echo"), Some(1.0));
    // Both answers were seen (and counted as the close frames they are).
    assert_eq!(t["from_client"]["frames"], 1);
    let text = running.metrics_text();
    for direction in ["client_to_upstream", "upstream_to_client"] {
        let labels = [
            ("route", "echo"),
            ("direction", direction),
            ("code", "1001"),
        ];
        assert_eq!(
            metric(&text, "wsgate_ws_closes_total", &labels),
            Some(1.0),
            "{direction}"
        );
    }
    assert!(admin.list("").await.is_empty());
    // wsgate ends the connection after the handshake, with nothing more.
    assert!(read_to_end(&mut client.stream).await.is_empty());
}

#[tokio::test]
async fn a_close_with_code_and_reason_reaches_both_peers() {
    let (backend, seen) = echo_backend().await;
    let (running, addr) = start_for(backend, "{}").await;
    let admin = Admin::of(&running);
    let mut client = RawClient::connect(addr).await;
    let id = only_id(&admin, "echo").await;
    let post = post_later(
        &admin,
        format!("/tunnels/{id}/close?code=4000&reason=maintenance"),
    );
    assert_eq!(
        answer_close(&mut client.stream).await,
        (4000, "maintenance".to_owned())
    );
    let answer = post.await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["state"], "closed");
    assert_eq!(backend_close(&seen).await, (4000, "maintenance".to_owned()));

    // A form-encoded reason of 123 bytes, the most a close frame holds.
    let mut client = RawClient::connect(addr).await;
    let id = only_id(&admin, "echo").await;
    let reason = format!("going+away{}", "!".repeat(113));
    let post = post_later(&admin, format!("/tunnels/{id}/close?reason={reason}"));
    let (code, got) = answer_close(&mut client.stream).await;
    assert_eq!((code, got.len()), (1001, 123));
    assert!(got.starts_with("going away!"), "{got}");
    assert_eq!(post.await.unwrap().status, 200);
    assert_eq!(admin_closes(&running, "echo"), Some(2.0));
}

#[tokio::test]
async fn a_close_refuses_bad_asks_and_unknown_tunnels() {
    let (backend, _) = echo_backend().await;
    let (running, addr) = start_for(backend, "{}").await;
    let admin = Admin::of(&running);
    let mut client = RawClient::connect(addr).await;
    let id = only_id(&admin, "echo").await;
    let long = "x".repeat(124);
    let bad = [
        "code=1005".to_owned(),
        "code=1006".to_owned(),
        "code=999".to_owned(),
        "code=5000".to_owned(),
        "code=abc".to_owned(),
        format!("reason={long}"),
        "colour=blue".to_owned(),
    ];
    for query in &bad {
        let error = admin
            .post(&format!("/tunnels/{id}/close?{query}"))
            .await
            .error(400);
        assert!(!error.is_empty(), "{query}");
    }
    let error = admin
        .post(&format!("/tunnels/{id}/close?reason={long}"))
        .await
        .error(400);
    assert!(error.contains("124"), "{error}");
    let missing = id + 1000;
    let error = admin
        .post(&format!("/tunnels/{missing}/close"))
        .await
        .error(404);
    assert_eq!(error, format!("no tunnel {missing}"));
    admin.post("/tunnels/abc/close").await.error(400);
    let wrong = admin.get(&format!("/tunnels/{id}/close")).await;
    wrong.error(405);
    assert_eq!(wrong.header("allow"), Some("POST"));
    // Nothing was closed: the tunnel still echoes.
    assert_eq!(admin.list("").await[0]["state"], "open");
    assert_eq!(admin_closes(&running, "echo"), Some(0.0));
    client.send(&client_frame(0x81, b"still here")).await;
    assert_eq!(client.frame().await, Some((0x81, b"still here".to_vec())));
}

struct Two {
    running: wsgate::Running,
    admin: Admin,
    /// Two tunnels on route `a`, one on `b`.
    a: Vec<TcpStream>,
    b: TcpStream,
}

async fn three_tunnels() -> Two {
    let (a, _) = echo_backend().await;
    let (b, _) = echo_backend().await;
    let running = start(&two_routes(a, b)).await;
    let addr = running.listener_addr("public").unwrap();
    let admin = Admin::of(&running);
    let open = |path: &'static str| async move {
        let (stream, head) = raw_request(addr, &upgrade_request(path, "")).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        stream
    };
    let a = vec![open("/a").await, open("/a").await];
    let b = open("/b").await;
    admin.wait_for(3).await;
    Two {
        running,
        admin,
        a,
        b,
    }
}

#[tokio::test]
async fn a_bulk_close_by_route_closes_that_route_only() {
    let mut t = three_tunnels().await;
    let b_id = t.admin.ids("?route=b").await;
    let answer = t.admin.post("/tunnels/close?route=a&spread=0s").await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.json(), json!({ "matched": 2, "spread_ms": 0 }));
    for stream in &mut t.a {
        assert_eq!(answer_close(stream).await, (1001, String::new()));
    }
    eventually_async("route a's tunnels gone", || async {
        (t.admin.ids("").await == b_id).then_some(())
    })
    .await;
    assert_eq!(admin_closes(&t.running, "a"), Some(2.0));
    assert_eq!(admin_closes(&t.running, "b"), Some(0.0));
    t.b.write_all(&client_frame(0x81, b"b lives"))
        .await
        .unwrap();
    assert_eq!(
        read_frame(&mut t.b).await,
        Some((0x81, b"b lives".to_vec()))
    );
}

#[tokio::test]
async fn a_bulk_close_of_all_with_a_code_and_reason() {
    let mut t = three_tunnels().await;
    let answer = t
        .admin
        .post("/tunnels/close?all=true&spread=0s&code=4001&reason=bye")
        .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.json(), json!({ "matched": 3, "spread_ms": 0 }));
    for stream in t.a.iter_mut().chain([&mut t.b]) {
        assert_eq!(answer_close(stream).await, (4001, "bye".to_owned()));
    }
    eventually_async("every tunnel gone", || async {
        t.admin.list("").await.is_empty().then_some(())
    })
    .await;
    assert_eq!(admin_closes(&t.running, "a"), Some(2.0));
    assert_eq!(admin_closes(&t.running, "b"), Some(1.0));
}

#[tokio::test]
async fn a_bulk_close_needs_a_filter_and_good_values() {
    let t = three_tunnels().await;
    let bad = [
        "",
        "?spread=0s",
        "?limit=1",
        "?all=false&spread=0s",
        "?all=maybe",
        "?route=a&spread=abc",
        "?route=a&spread=2h",
        "?route=a&spread=-1s",
        "?route=a&code=1005",
        "?route=a&colour=blue",
        "?client=10.1.2",
        "?route=",
    ];
    for query in bad {
        t.admin
            .post(&format!("/tunnels/close{query}"))
            .await
            .error(400);
    }
    let long = format!("?route=a&reason={}", "x".repeat(124));
    t.admin
        .post(&format!("/tunnels/close{long}"))
        .await
        .error(400);
    let error = t.admin.post("/tunnels/close").await.error(400);
    assert!(error.contains("all=true"), "{error}");
    // The default spread, and one given, on a filter that matches nothing.
    let answer = t.admin.post("/tunnels/close?route=nothing").await;
    assert_eq!(answer.status, 202);
    assert_eq!(answer.json(), json!({ "matched": 0, "spread_ms": 10000 }));
    let answer = t
        .admin
        .post("/tunnels/close?route=nothing&spread=500ms")
        .await;
    assert_eq!(answer.json(), json!({ "matched": 0, "spread_ms": 500 }));
    let wrong = t.admin.get("/tunnels/close?route=a").await;
    wrong.error(405);
    assert_eq!(wrong.header("allow"), Some("POST"));
    // Nothing was closed.
    assert_eq!(t.admin.list("").await.len(), 3);
    assert_eq!(admin_closes(&t.running, "a"), Some(0.0));
}
