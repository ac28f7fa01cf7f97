//! The admin API's tests' client: one HTTP/1.1 request per connection with hyper's client, the
//! answer's status, headers and body (JSON parsed), a tap's NDJSON read line by line with a bound on
//! each line's wait, and the peers' side of a close handshake.
#![allow(dead_code)]

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::{client_frame, read_frame, TIMEOUT};

/// The admin listener and the token requests carry (if any).
#[derive(Clone)]
pub struct Admin {
    pub addr: SocketAddr,
    pub token: Option<String>,
}

/// A whole answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} {}", self.status, self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `error` text of an error answer, after checking its status.
    pub fn error(&self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.header("content-type"), Some("application/json"));
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error text: {}", self.body))
            .to_owned()
    }
}

impl Admin {
    /// The admin listener of `running`, no token.
    pub fn of(running: &wsgate::Running) -> Admin {
        Admin {
            addr: running.admin_addr().expect("an admin listener"),
            token: None,
        }
    }

    pub fn with_token(&self, token: &str) -> Admin {
        Admin {
            addr: self.addr,
            token: Some(token.to_owned()),
        }
    }

    /// The answer's head; its body still to read.
    pub async fn send(&self, method: &str, target: &str) -> hyper::Response<Incoming> {
        let stream = TcpStream::connect(self.addr).await.expect("admin connects");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(target)
            .header("host", self.addr.to_string());
        if let Some(token) = &self.token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let req = req.body(Empty::<Bytes>::new()).expect("a request");
        // A close waits for the tunnel up to the close grace (5 s), and a second more.
        let wait = TIMEOUT + std::time::Duration::from_secs(3);
        tokio::time::timeout(wait, sender.send_request(req))
            .await
            .unwrap_or_else(|_| panic!("{method} {target}: no answer within {wait:?}"))
            .unwrap_or_else(|e| panic!("{method} {target}: {e}"))
    }

    pub async fn request(&self, method: &str, target: &str) -> Answer {
        let response = self.send(method, target).await;
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(TIMEOUT, body.collect())
            .await
            .unwrap_or_else(|_| panic!("{method} {target}: the body did not end"))
            .expect("a body")
            .to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(body.to_vec()).expect("a UTF-8 body"),
        }
    }

    pub async fn get(&self, target: &str) -> Answer {
        self.request("GET", target).await
    }

    pub async fn post(&self, target: &str) -> Answer {
        self.request("POST", target).await
    }

    /// `GET /tunnels{query}`: the array, after checking the 200.
    pub async fn list(&self, query: &str) -> Vec<Value> {
        let answer = self.get(&format!("/tunnels{query}")).await;
        assert_eq!(answer.status, 200, "{query}: {}", answer.body);
        match answer.json() {
            Value::Array(tunnels) => tunnels,
            other => panic!("not an array: {other}"),
        }
    }

    /// The ids `GET /tunnels{query}` lists, in order.
    pub async fn ids(&self, query: &str) -> Vec<u64> {
        let tunnels = self.list(query).await;
        tunnels.iter().map(|t| t["id"].as_u64().unwrap()).collect()
    }

    /// Waits until the listing holds `count` tunnels; returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<Value> {
        crate::support::eventually_async(&format!("{count} tunnels listed"), || async move {
            let tunnels = self.list("").await;
            (tunnels.len() == count).then_some(tunnels)
        })
        .await
    }

    /// Opens a tap on tunnel `id` with `query`; asserts the 200 and its content type.
    pub async fn tap(&self, id: u64, query: &str) -> Tap {
        let response = self.send("GET", &format!("/tunnels/{id}/tap{query}")).await;
        assert_eq!(response.status(), 200, "{:?}", response.headers());
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/x-ndjson"
        );
        Tap {
            body: response.into_body(),
            buffered: Vec::new(),
        }
    }
}

/// A tap's stream of JSON lines.
pub struct Tap {
    body: Incoming,
    buffered: Vec<u8>,
}

impl Tap {
    /// The next line, or `None` once the stream has ended; panics when none comes in time.
    pub async fn line(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffered.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffered.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).expect("a JSON line"));
            }
            let frame = tokio::time::timeout(TIMEOUT, self.body.frame())
                .await
                .expect("a tap line in time");
            match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffered.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => panic!("the tap's stream broke: {e}"),
                None => {
                    assert!(self.buffered.is_empty(), "a line without its end");
                    return None;
                }
            }
        }
    }

    /// Lines until an `end` line (that one included), at most `bound`.
    pub async fn until_end(&mut self, bound: usize) -> Vec<Value> {
        let mut lines = Vec::new();
        while lines.len() < bound {
            let line = self
                .line()
                .await
                .expect("an end line before the stream ends");
            let end = line.get("end").is_some();
            lines.push(line);
            if end {
                return lines;
            }
        }
        panic!("no end line in {bound} lines: {lines:?}");
    }
}

/// The client's side of a close wsgate started: reads frames until the close, answers it with the
/// same code, and returns the code and reason it carried.
pub async fn answer_close(stream: &mut TcpStream) -> (u16, String) {
    loop {
        let (first, payload) = read_frame(stream).await.expect("a close frame");
        if first & 0x0F == 0x8 {
            assert!(payload.len() >= 2, "a close frame without a code");
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            let reason = String::from_utf8(payload[2..].to_vec()).expect("a UTF-8 reason");
            stream
                .write_all(&client_frame(0x88, &payload[..2]))
                .await
                .expect("the close answer is written");
            return (code, reason);
        }
    }
}

/// The id of the only tunnel listed with `route`, once it is.
pub async fn only_id(admin: &Admin, route: &str) -> u64 {
    crate::support::eventually_async("the tunnel listed", || async move {
        let ids = admin.ids(&format!("?route={route}")).await;
        (ids.len() == 1).then(|| ids[0])
    })
    .await
}

/// Two routes, `a` on `/a` to upstream `ua` and `b` on `/b` to upstream `ub`, and nothing else (so a
/// path of neither has no route).
pub fn two_routes(a: SocketAddr, b: SocketAddr) -> String {
    format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:0" }}
upstreams:
  ua: {{ endpoints: ["{a}"], connect_timeout: 1s }}
  ub: {{ endpoints: ["{b}"], connect_timeout: 1s }}
routes:
  - {{ name: a, match: {{ path_prefix: "/a" }}, upstream: ua }}
  - {{ name: b, match: {{ path_prefix: "/b" }}, upstream: ub }}
"#
    )
}
