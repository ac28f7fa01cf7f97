//! The admin API's listing of live tunnels (`GET /tunnels`, `GET /tunnels/{id}`) against wsgate
//! started from YAML with real peers on both sides: every field of a tunnel (HTTP/1.1 and HTTP/2,
//! subprotocol, extensions, JWT subject, traffic, pings), every filter and its refusals, a tunnel
//! leaving once it ends, wrong methods, the page, and the API's absence on a public listener.

mod admin;
mod support;

use std::net::SocketAddr;

use admin::{two_routes, Admin};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// An upgrade from source address `ip` to `path`; the open stream.
async fn tunnel_from(ip: &str, addr: SocketAddr, path: &str) -> TcpStream {
    let (stream, head) = request_from(ip, addr, &upgrade_request(path, "")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// Sends a text message and reads its echo.
async fn echo(stream: &mut TcpStream, text: &str) {
    stream
        .write_all(&client_frame(0x81, text.as_bytes()))
        .await
        .unwrap();
    assert_eq!(
        read_frame(stream).await,
        Some((0x81, text.as_bytes().to_vec()))
    );
}

fn traffic(frames: u64, messages: u64, bytes: u64) -> Value {
    json!({ "frames": frames, "messages": messages, "bytes": bytes })
}

#[tokio::test]
async fn an_empty_listing_is_an_empty_array_and_the_page_is_html() {
    let (backend, _) = echo_backend().await;
    let (running, _) = start_for(backend, "{}").await;
    let admin = Admin::of(&running);
    let answer = admin.get("/tunnels").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.json(), json!([]));
    let page = admin.get("/").await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        page.headers
    );
    let lower = page.body.to_ascii_lowercase();
    assert!(
        lower.contains("<html") || lower.contains("<!doctype"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_tunnel_shows_every_field_and_its_traffic() {
    let (backend, _) = echo_backend().await;
    let (running, addr) = start_for(backend, "{ subprotocols: [chat.v1], ping: answer }").await;
    let admin = Admin::of(&running);
    let offer = "Sec-WebSocket-Protocol: chat.v1\r\n";
    let (mut stream, head) = raw_request(addr, &upgrade_request("/ws", offer)).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    for _ in 0..3 {
        echo(&mut stream, "hello").await;
    }
    let client = stream.local_addr().unwrap().to_string();
    let t = eventually_async("the three echoes counted", || async {
        let tunnels = admin.list("").await;
        let t = tunnels.first()?.clone();
        (t["from_upstream"] == traffic(3, 3, 15)).then_some(t)
    })
    .await;
    assert!(t["id"].as_u64().is_some_and(|id| id > 0), "{t}");
    assert_eq!(t["route"], "echo");
    assert_eq!(t["listener"], "public");
    assert_eq!(t["client"], client.as_str());
    assert_eq!(t["upstream"], "echo");
    assert_eq!(t["endpoint"], backend.to_string().as_str());
    assert_eq!(t["transport"], "h1");
    assert_eq!(t["subprotocol"], "chat.v1");
    assert_eq!(t["extensions"], Value::Null);
    assert_eq!(t["subject"], Value::Null);
    assert_eq!(t["state"], "open");
    assert_eq!(t["from_client"], traffic(3, 3, 15));
    assert_eq!(t["pings_answered"], 0);
    let started = humantime::parse_rfc3339(t["started"].as_str().unwrap()).expect("RFC 3339");
    let last_data = humantime::parse_rfc3339(t["last_data"].as_str().unwrap()).expect("RFC 3339");
    assert!(last_data >= started, "{t}");
    let (age, idle) = (
        t["age_ms"].as_u64().unwrap(),
        t["idle_ms"].as_u64().unwrap(),
    );
    assert!(idle <= age, "{t}");
    let shown = admin.get(&format!("/tunnels/{}", t["id"])).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.json()["client"], client.as_str());
    assert_eq!(shown.json()["from_client"], traffic(3, 3, 15));

    // A ping wsgate answers: counted, and a frame of the client's (4 bytes of payload).
    stream
        .write_all(&client_frame(0x89, b"ping"))
        .await
        .unwrap();
    assert_eq!(
        read_frame(&mut stream).await,
        Some((0x8A, b"ping".to_vec()))
    );
    let t = eventually_async("the ping counted", || async {
        let t = admin.list("").await.first()?.clone();
        (t["pings_answered"] == 1).then_some(t)
    })
    .await;
    assert_eq!(t["from_client"], traffic(4, 3, 19));
    assert_eq!(t["from_upstream"], traffic(3, 3, 15));
}

#[tokio::test]
async fn a_deflate_tunnel_shows_its_extensions() {
    let (backend, _) = raw_backend(
        |accept: &str| {
            switching(accept).replace(
                "\r\n\r\n",
                "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n",
            )
        },
        vec![],
    )
    .await;
    let (running, addr) = start_for(backend, "{ extensions: [permessage-deflate] }").await;
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    let (_stream, head) = raw_request(addr, &upgrade_request("/", offer)).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let t = &Admin::of(&running).wait_for(1).await[0];
    assert_eq!(
        t["extensions"], "permessage-deflate; server_no_context_takeover",
        "{t}"
    );
    assert_eq!(t["subprotocol"], Value::Null);
}

#[tokio::test]
async fn a_jwt_route_shows_the_subject() {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let (backend, _) = echo_backend().await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:0" }}
upstreams: {{ echo: {{ endpoints: ["{backend}"] }} }}
routes:
  - name: echo
    upstream: echo
    auth: {{ jwt: {{ keys: "tests/data/jwt/hmac.secret", algorithms: [HS256] }} }}
"#
    );
    let running = start(&yaml).await;
    let addr = running.listener_addr("public").unwrap();
    let secret = std::fs::read("tests/data/jwt/hmac.secret").unwrap();
    let secret = secret.strip_suffix(b"\n").unwrap_or(&secret);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let token = encode(
        &Header::new(Algorithm::HS256),
        &json!({ "sub": "alice", "exp": exp }),
        &EncodingKey::from_secret(secret),
    )
    .unwrap();
    let auth = format!("Authorization: Bearer {token}\r\n");
    let (_stream, head) = raw_request(addr, &upgrade_request("/", &auth)).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let t = &Admin::of(&running).wait_for(1).await[0];
    assert_eq!(t["subject"], "alice", "{t}");
}

#[tokio::test]
async fn an_http2_tunnel_shows_transport_h2() {
    let (backend, _) = echo_backend().await;
    let yaml = config(backend, "{}").replace(
        "bind: \"127.0.0.1:0\"\nadmin:",
        "bind: \"127.0.0.1:0\"\n    http2: true\nadmin:",
    );
    assert!(yaml.contains("http2: true"), "{yaml}");
    let running = start(&yaml).await;
    let addr = running.listener_addr("public").unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let client = tcp.local_addr().unwrap().to_string();
    let mut conn = h2::handshake(tcp).await;
    let (_, mut ws) = h2::websocket(&mut conn, "test.local", "/ws", &[]).await;
    ws.send(Message::text("over h2")).await.unwrap();
    let echoed = tokio::time::timeout(TIMEOUT, ws.next()).await.unwrap();
    assert_eq!(echoed.unwrap().unwrap(), Message::text("over h2"));
    let admin = Admin::of(&running);
    let t = &admin.wait_for(1).await[0];
    assert_eq!(t["transport"], "h2", "{t}");
    assert_eq!(t["client"], client.as_str());
    assert_eq!(t["from_client"], traffic(1, 1, 7));
}

#[tokio::test]
async fn filters_select_by_route_client_upstream_endpoint_and_limit() {
    let (a, _) = echo_backend().await;
    let (b, _) = echo_backend().await;
    let running = start(&two_routes(a, b)).await;
    let addr = running.listener_addr("public").unwrap();
    let admin = Admin::of(&running);
    // Opened one after the other, so ids rise in this order.
    let _one = tunnel_from("127.0.0.1", addr, "/a").await;
    let first = admin.wait_for(1).await[0]["id"].as_u64().unwrap();
    let _two = tunnel_from("127.0.0.2", addr, "/b").await;
    admin.wait_for(2).await;
    let _three = tunnel_from("127.0.0.3", addr, "/a").await;
    admin.wait_for(3).await;
    let (one, two, three) = (first, first + 1, first + 2);
    assert_eq!(admin.ids("").await, vec![one, two, three]);
    let cases: &[(&str, Vec<u64>)] = &[
        ("?route=a", vec![one, three]),
        ("?route=b", vec![two]),
        ("?route=nothing", vec![]),
        ("?client=127.0.0.2", vec![two]),
        ("?client=127.0.0.2%2F31", vec![two, three]),
        ("?client=127.0.0.0/8", vec![one, two, three]),
        ("?client=10.0.0.0/8", vec![]),
        ("?upstream=ub", vec![two]),
        ("?upstream=ua", vec![one, three]),
        ("?limit=1", vec![one]),
        ("?limit=0", vec![]),
        ("?route=a&limit=1", vec![one]),
        ("?route=a&client=127.0.0.3", vec![three]),
        ("?route=b&client=127.0.0.3", vec![]),
    ];
    for (query, want) in cases {
        assert_eq!(&admin.ids(query).await, want, "{query}");
    }
    assert_eq!(admin.ids(&format!("?endpoint={a}")).await, vec![one, three]);
    assert_eq!(admin.ids(&format!("?endpoint={b}")).await, vec![two]);
    let refused = [
        "?client=10.1.2",
        "?client=10.0.0.0/33",
        "?client=127.0.0.1:5000",
        "?limit=-1",
        "?limit=abc",
        "?route=",
        "?colour=blue",
        "?route=%zz",
    ];
    for query in refused {
        let error = admin.get(&format!("/tunnels{query}")).await.error(400);
        assert!(!error.is_empty(), "{query}");
    }
    let unknown = admin.get("/tunnels?colour=blue").await.error(400);
    assert!(unknown.contains("colour"), "{unknown}");
}

#[tokio::test]
async fn show_answers_one_tunnel_and_a_tunnel_leaves_once_it_ends() {
    let (backend, _) = echo_backend().await;
    let (running, addr) = start_for(backend, "{}").await;
    let admin = Admin::of(&running);
    let mut client = RawClient::connect(addr).await;
    let id = admin.wait_for(1).await[0]["id"].as_u64().unwrap();
    let shown = admin.get(&format!("/tunnels/{id}")).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.json()["id"], id);
    assert_eq!(shown.json()["state"], "open");
    let missing = id + 1000;
    let error = admin.get(&format!("/tunnels/{missing}")).await.error(404);
    assert_eq!(error, format!("no tunnel {missing}"));
    admin.get("/tunnels/abc").await.error(400);
    admin.get("/tunnels/-1").await.error(400);
    admin.get(&format!("/tunnels/{id}?x=1")).await.error(400);

    // The client closes; the backend answers; the tunnel leaves.
    client
        .send(&client_frame(0x88, &1000u16.to_be_bytes()))
        .await;
    assert_eq!(read_close(&mut client.stream).await, Some(1000));
    eventually_async("the tunnel gone", || async {
        admin.list("").await.is_empty().then_some(())
    })
    .await;
    admin.get(&format!("/tunnels/{id}")).await.error(404);
}

#[tokio::test]
async fn wrong_methods_and_unknown_paths() {
    let (backend, _) = echo_backend().await;
    let (running, _) = start_for(backend, "{}").await;
    let admin = Admin::of(&running);
    let cases = [
        ("GET", "/tunnels/1/close", "POST"),
        ("GET", "/tunnels/close", "POST"),
        ("POST", "/tunnels", "GET"),
        ("POST", "/tunnels/1", "GET"),
        ("DELETE", "/tunnels/1", "GET"),
        ("POST", "/tunnels/1/tap", "GET"),
        ("POST", "/", "GET"),
    ];
    for (method, path, allow) in cases {
        let answer = admin.request(method, path).await;
        answer.error(405);
        assert_eq!(answer.header("allow"), Some(allow), "{method} {path}");
    }
    let answer = admin.get("/tunnels/1/nothing").await;
    assert_eq!(answer.status, 404);
    assert_eq!(admin.get("/nothing").await.status, 404);
}

#[tokio::test]
async fn the_admin_api_is_not_on_a_public_listener() {
    let (a, _) = echo_backend().await;
    let (b, _) = echo_backend().await;
    let running = start(&two_routes(a, b)).await;
    let addr = running.listener_addr("public").unwrap();
    let _open = tunnel_from("127.0.0.1", addr, "/a").await;
    Admin::of(&running).wait_for(1).await;
    // Routed like any request: no route matches `/tunnels`.
    for path in ["/tunnels", "/tunnels/1", "/"] {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n");
        let (mut stream, head) = raw_request(addr, &request).await;
        assert!(head.starts_with("HTTP/1.1 404"), "{path}: {head}");
        let body = read_to_end(&mut stream).await;
        let parsed: Result<Value, _> = serde_json::from_slice(&body);
        assert!(
            !parsed.is_ok_and(|v| v.is_array() || v.get("id").is_some()),
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let text = running.metrics_text();
    let labels = [("route", "none"), ("status", "404")];
    assert_eq!(
        metric(&text, "wsgate_http_requests_total", &labels),
        Some(3.0),
        "{text}"
    );
}
