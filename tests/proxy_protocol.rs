//! Behind a load balancer: PROXY protocol v1 and v2 give wsgate the real client address, and
//! `trusted_proxies` decides whose X-Forwarded-For is kept.

mod support;

use std::net::SocketAddr;

use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn config(backend: SocketAddr, listener: &str, trusted: &str) -> String {
    format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" {listener} }}]
upstreams: {{ b: {{ endpoints: ["{backend}"] }} }}
routes: [{{ name: b, upstream: b }}]
trusted_proxies: [{trusted}]
"#
    )
}

fn plain_ok(_: &str) -> String {
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_owned()
}

fn forwarded_for(head: &str) -> Vec<String> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("x-forwarded-for"))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

fn v2_tcp4(ip: [u8; 4], port: u16) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    out.extend_from_slice(&[0x21, 0x11, 0x00, 12]);
    out.extend_from_slice(&ip);
    out.extend_from_slice(&[127, 0, 0, 1]);
    out.extend_from_slice(&port.to_be_bytes());
    out.extend_from_slice(&80u16.to_be_bytes());
    out
}

#[tokio::test]
async fn v1_header_gives_the_real_client_to_http() {
    let (backend, seen) = raw_backend(plain_ok, vec![]).await;
    let running = start(&config(backend, ", proxy_protocol: true", "")).await;
    let addr = running.listener_addr("public").unwrap();
    let request = "PROXY TCP4 203.0.113.7 10.0.0.1 5555 80\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let (_, head) = raw_request(addr, request).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let backend_head = seen.lock().unwrap().head.clone();
    assert_eq!(
        forwarded_for(&backend_head),
        ["203.0.113.7"],
        "{backend_head}"
    );
}

#[tokio::test]
async fn v2_header_gives_the_real_client_to_a_tunnel() {
    let (backend, seen) = raw_backend(switching, vec![]).await;
    let running = start(&config(backend, ", proxy_protocol: true", "")).await;
    let addr = running.listener_addr("public").unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // Header and request in one write, as a balancer sends them.
    let mut bytes = v2_tcp4([198, 51, 100, 9], 40000);
    bytes.extend_from_slice(upgrade_request("/ws", "").as_bytes());
    stream.write_all(&bytes).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    stream.write_all(&client_frame(0x81, b"hi")).await.unwrap();
    eventually("frame at the backend", || {
        (!seen.lock().unwrap().bytes.is_empty()).then_some(())
    })
    .await;
    assert_eq!(
        parse_frames(&seen.lock().unwrap().bytes),
        vec![(0x81, b"hi".to_vec())]
    );
    assert_eq!(forwarded_for(&seen.lock().unwrap().head), ["198.51.100.9"]);
}

#[tokio::test]
async fn missing_header_closes_the_connection() {
    let (backend, seen) = raw_backend(plain_ok, vec![]).await;
    let running = start(&config(backend, ", proxy_protocol: true", "")).await;
    let addr = running.listener_addr("public").unwrap();
    let (mut stream, head) = raw_request(addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(head, "");
    assert!(read_to_end(&mut stream).await.is_empty());
    assert!(seen.lock().unwrap().head.is_empty());
}

#[tokio::test]
async fn forwarded_for_from_untrusted_peers_is_replaced() {
    let request = "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n";
    // 127.0.0.1 is not trusted: its claim is dropped.
    let (backend, seen) = raw_backend(plain_ok, vec![]).await;
    let running = start(&config(backend, "", r#""10.0.0.0/8""#)).await;
    let (_, head) = raw_request(running.listener_addr("public").unwrap(), request).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(forwarded_for(&seen.lock().unwrap().head), ["127.0.0.1"]);
    // Trusted: kept and appended to.
    let (backend, seen) = raw_backend(plain_ok, vec![]).await;
    let running = start(&config(backend, "", r#""127.0.0.0/8""#)).await;
    raw_request(running.listener_addr("public").unwrap(), request).await;
    assert_eq!(
        forwarded_for(&seen.lock().unwrap().head),
        ["6.6.6.6, 127.0.0.1"]
    );
}
