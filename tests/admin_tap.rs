//! Taps through the admin API (`GET /tunnels/{id}/tap`): one JSON line per frame as the tunnel
//! carries it, its end at the limit or with the tunnel, payloads only with `admin.tap_payloads`,
//! two taps at once, and every refusal. Each line is read with a bound on its wait.

mod admin;
mod support;

use admin::{answer_close, only_id, Admin};
use serde_json::{json, Value};
use support::*;

/// The frame fields of a line, without its time (checked apart).
fn header(line: &Value) -> Value {
    let mut line = line.clone();
    let time = line
        .as_object_mut()
        .and_then(|l| l.remove("time"))
        .unwrap_or_else(|| panic!("no time in {line}"));
    let time = time.as_str().expect("a time string");
    humantime::parse_rfc3339(time).unwrap_or_else(|e| panic!("{time}: {e}"));
    line
}

fn text_frame(direction: &str, masked: bool, length: u64) -> Value {
    json!({
        "direction": direction, "opcode": "text", "fin": true,
        "rsv1": false, "rsv2": false, "rsv3": false, "masked": masked, "length": length,
    })
}

/// wsgate on an echo backend with `admin` lines added to its admin block; one raw client.
async fn tunnel(admin_extra: &str) -> (wsgate::Running, Admin, RawClient, u64) {
    let (backend, _) = echo_backend().await;
    let yaml = config(backend, "{}").replace(
        "admin:\n  bind: \"127.0.0.1:0\"\n",
        &format!("admin:\n  bind: \"127.0.0.1:0\"\n{admin_extra}"),
    );
    let running = start(&yaml).await;
    let addr = running.listener_addr("public").unwrap();
    let admin = Admin::of(&running);
    let client = RawClient::connect(addr).await;
    let id = only_id(&admin, "echo").await;
    (running, admin, client, id)
}

#[tokio::test]
async fn a_tap_streams_each_frame_then_ends_at_its_limit() {
    let (_running, admin, mut client, id) = tunnel("").await;
    let mut tap = admin.tap(id, "?limit=2").await;
    client.send(&client_frame(0x81, b"hello")).await;
    assert_eq!(client.frame().await, Some((0x81, b"hello".to_vec())));
    let first = tap.line().await.expect("a line");
    assert_eq!(header(&first), text_frame("client", true, 5), "{first}");
    let second = tap.line().await.expect("a line");
    assert_eq!(
        header(&second),
        text_frame("upstream", false, 5),
        "{second}"
    );
    assert_eq!(tap.line().await, Some(json!({ "end": "limit" })));
    assert_eq!(tap.line().await, None, "the stream ends after its end line");
    // The tunnel goes on, untapped.
    client.send(&client_frame(0x82, &[1, 2, 3])).await;
    assert_eq!(client.frame().await, Some((0x82, vec![1, 2, 3])));
}

#[tokio::test]
async fn a_tap_ends_with_closed_when_the_tunnel_ends() {
    let (_running, admin, mut client, id) = tunnel("").await;
    let mut tap = admin.tap(id, "").await;
    client.send(&client_frame(0x89, b"p")).await;
    assert_eq!(client.frame().await, Some((0x8A, b"p".to_vec())));
    client
        .send(&client_frame(0x88, &1000u16.to_be_bytes()))
        .await;
    assert_eq!(read_close(&mut client.stream).await, Some(1000));
    let lines = tap.until_end(10).await;
    assert_eq!(lines.last(), Some(&json!({ "end": "closed" })), "{lines:?}");
    let frames: Vec<(&str, &str)> = lines[..lines.len() - 1]
        .iter()
        .map(|l| {
            (
                l["direction"].as_str().unwrap(),
                l["opcode"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        frames,
        [
            ("client", "ping"),
            ("client", "close"),
            ("upstream", "close")
        ],
        "{lines:?}"
    );
    assert_eq!(tap.line().await, None);
    // Gone with its tunnel.
    admin.get(&format!("/tunnels/{id}/tap")).await.error(404);
}

#[tokio::test]
async fn an_admin_close_ends_a_tap_with_closed() {
    let (_running, admin, mut client, id) = tunnel("").await;
    let mut tap = admin.tap(id, "").await;
    let closing = {
        let admin = admin.clone();
        tokio::spawn(async move { admin.post(&format!("/tunnels/{id}/close")).await })
    };
    assert_eq!(answer_close(&mut client.stream).await.0, 1001);
    assert_eq!(closing.await.unwrap().json()["state"], "closed");
    let lines = tap.until_end(10).await;
    assert_eq!(lines.last(), Some(&json!({ "end": "closed" })), "{lines:?}");
}

#[tokio::test]
async fn payloads_are_refused_unless_tap_payloads_is_on() {
    let (_running, admin, _client, id) = tunnel("").await;
    let error = admin
        .get(&format!("/tunnels/{id}/tap?payload=5"))
        .await
        .error(403);
    assert!(error.contains("tap_payloads"), "{error}");
    for query in [
        "?limit=0",
        "?limit=x",
        "?limit=-1",
        "?payload=x",
        "?payload=70000",
        "?colour=blue",
    ] {
        admin
            .get(&format!("/tunnels/{id}/tap{query}"))
            .await
            .error(400);
    }
    let missing = id + 1000;
    let error = admin
        .get(&format!("/tunnels/{missing}/tap"))
        .await
        .error(404);
    assert_eq!(error, format!("no tunnel {missing}"));
    admin.get("/tunnels/abc/tap").await.error(400);
    // payload=0 asks for none: allowed.
    let _tap = admin.tap(id, "?payload=0&limit=1").await;
}

#[tokio::test]
async fn with_tap_payloads_text_and_hex_are_cut_to_the_bytes_asked() {
    let (_running, admin, mut client, id) = tunnel("  tap_payloads: true\n").await;
    let mut tap = admin.tap(id, "?payload=5&limit=4").await;
    client.send(&client_frame(0x81, b"hello world")).await;
    assert_eq!(client.frame().await, Some((0x81, b"hello world".to_vec())));
    let binary = [0u8, 1, 2, 0xFF, 0xFE, 0xFD];
    client.send(&client_frame(0x82, &binary)).await;
    assert_eq!(client.frame().await, Some((0x82, binary.to_vec())));
    let lines = tap.until_end(5).await;
    assert_eq!(lines.len(), 5, "{lines:?}");
    for (line, direction) in lines[..2].iter().zip(["client", "upstream"]) {
        assert_eq!(line["direction"], direction);
        assert_eq!(line["length"], 11, "{line}");
        assert_eq!(line["payload"], "hello", "unmasked and cut to 5: {line}");
        assert!(line.get("payload_hex").is_none(), "{line}");
    }
    for line in &lines[2..4] {
        assert_eq!(line["opcode"], "binary");
        assert_eq!(line["length"], 6);
        assert_eq!(line["payload_hex"], "000102fffe", "{line}");
        assert!(line.get("payload").is_none(), "{line}");
    }
    assert_eq!(lines[4], json!({ "end": "limit" }));
}

#[tokio::test]
async fn two_taps_on_one_tunnel_both_see_every_frame() {
    let (_running, admin, mut client, id) = tunnel("").await;
    let mut one = admin.tap(id, "?limit=2").await;
    let mut two = admin.tap(id, "?limit=2").await;
    client.send(&client_frame(0x81, b"twice")).await;
    assert_eq!(client.frame().await, Some((0x81, b"twice".to_vec())));
    for tap in [&mut one, &mut two] {
        let lines = tap.until_end(3).await;
        let got: Vec<Value> = lines[..2].iter().map(header).collect();
        assert_eq!(
            got,
            [
                text_frame("client", true, 5),
                text_frame("upstream", false, 5)
            ]
        );
        assert_eq!(lines[2], json!({ "end": "limit" }));
    }
}
