//! The forward-auth tests' peers: a hyper HTTP/1 auth service that records each request head and
//! counts connections, raw TCP peers for answers hyper would not send, and a client's upgrade.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::auth::forward::*;

/// An auth service: every request gets `answer()`; requests (heads only) are kept.
pub(super) struct Service {
    pub(super) url: Uri,
    pub(super) connections: Arc<AtomicUsize>,
    pub(super) seen: Arc<Mutex<Vec<Request<()>>>>,
}

pub(super) async fn service(
    answer: impl Fn() -> Response<Full<Bytes>> + Send + Sync + 'static,
) -> Service {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/auth?rd=1", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answer = Arc::new(answer);
    let (count, log) = (connections.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let (answer, log) = (answer.clone(), log.clone());
            let svc = service_fn(move |req: Request<Incoming>| {
                log.lock().unwrap().push(req.map(|_| ()));
                std::future::ready(Ok::<_, Infallible>(answer()))
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), svc));
        }
    });
    Service {
        url: url.parse().unwrap(),
        connections,
        seen,
    }
}

pub(super) fn answer(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
        response
            .headers_mut()
            .append(name, HeaderValue::from_str(value).unwrap());
    }
    response
}

/// A peer that reads each request head and then writes `reply` and hangs up, or with `None` keeps
/// the connection and never answers. Returns its URL and its count of accepted connections.
pub(super) async fn raw(reply: Option<Vec<u8>>) -> (Uri, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            match &reply {
                // The client may hang up first (a body over the limit): not this peer's concern.
                Some(bytes) => drop(stream.write_all(bytes).await),
                None => held.push(stream),
            }
        }
    });
    (format!("http://{addr}/auth").parse().unwrap(), accepted)
}

pub(super) fn settings(url: Uri) -> ForwardSettings {
    ForwardSettings {
        url,
        timeout: Duration::from_secs(5),
        pass_headers: vec![header::COOKIE, header::AUTHORIZATION],
        copy_headers: vec![],
    }
}

pub(super) fn auth(url: Uri) -> ForwardAuth {
    ForwardAuth::new(settings(url)).unwrap()
}

/// An upgrade request from 203.0.113.7 over TLS.
pub(super) struct Client {
    pub(super) method: Method,
    pub(super) uri: Uri,
    pub(super) headers: HeaderMap,
}

impl Client {
    pub(super) fn upgrade() -> Self {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "app.example"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("authorization", "Bearer t0ken"),
            ("upgrade", "websocket"),
            ("connection", "Upgrade, X-Named"),
            ("x-named", "hop-by-hop by name"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
            ("proxy-authorization", "Basic c2VjcmV0"),
            ("content-length", "0"),
            ("x-forwarded-for", "6.6.6.6"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        Client {
            method: Method::GET,
            uri: "/chat?room=1".parse().unwrap(),
            headers,
        }
    }

    pub(super) fn subject(&self) -> Subject<'_> {
        Subject {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            client_ip: "203.0.113.7".parse().unwrap(),
            proto: "https",
        }
    }
}

pub(super) fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

pub(super) async fn deny(auth: &ForwardAuth) -> Response<Bytes> {
    match auth.check(&Client::upgrade().subject()).await.unwrap() {
        Decision::Deny(response) => response,
        Decision::Allow(headers) => panic!("allowed with {headers:?}"),
    }
}
