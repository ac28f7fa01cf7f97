//! Affinity cookies (`sticky_cookie`): the first response names its endpoint in a Set-Cookie, requests
//! carrying it (HTTP and WebSocket upgrades alike) stay there, and a garbage cookie or one naming a
//! dead or unhealthy endpoint is rebalanced with a new cookie.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use support::*;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A backend answering its name: in the body of HTTP responses, in `X-Backend` of its 101s; it
/// refuses upgrades to `/refuse` with 403. It sets a cookie of its own, fails `/healthz` while `healthy` is false, and records the Cookie headers
/// it receives.
struct Backend {
    addr: SocketAddr,
    healthy: Arc<AtomicBool>,
    cookies: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

async fn backend(name: &'static str) -> Backend {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let healthy = Arc::new(AtomicBool::new(true));
    let cookies = Arc::new(Mutex::new(Vec::new()));
    let (h, c) = (healthy.clone(), cookies.clone());
    // Connections live in a JoinSet owned by the task: aborting it kills them all, as a crash would.
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((stream, _)) = socket.accept().await {
            let (healthy, cookies) = (h.clone(), c.clone());
            connections.spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    for v in req.headers().get_all("cookie") {
                        cookies.lock().unwrap().push(v.to_str().unwrap().to_owned());
                    }
                    let mut response = hyper::Response::new(Full::new(Bytes::from(name)));
                    if req.uri().path() == "/refuse" {
                        *response.status_mut() = hyper::StatusCode::FORBIDDEN;
                    } else if let Some(key) = req.headers().get("sec-websocket-key") {
                        let accept = wsgate_proto::handshake::accept_key(key.as_bytes());
                        *response.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
                        let h = response.headers_mut();
                        h.insert("upgrade", "websocket".parse().unwrap());
                        h.insert("connection", "Upgrade".parse().unwrap());
                        h.insert("sec-websocket-accept", accept.parse().unwrap());
                        h.insert("x-backend", name.parse().unwrap());
                        *response.body_mut() = Full::new(Bytes::new());
                    } else if req.uri().path() == "/healthz" && !healthy.load(Ordering::SeqCst) {
                        *response.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    response
                        .headers_mut()
                        .append("set-cookie", format!("own={name}; Path=/").parse().unwrap());
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Backend {
        addr,
        healthy,
        cookies,
        task,
    }
}

fn config(endpoints: &[&Backend], upstream: &str) -> String {
    let addrs: Vec<SocketAddr> = endpoints.iter().map(|e| e.addr).collect();
    upstream_config(&addrs, upstream)
}

const STICKY: &str = "    sticky_cookie: { name: srv }";

/// What one response said: status, its Set-Cookie values, and who answered (body or X-Backend).
#[derive(Debug)]
struct Answer {
    status: u16,
    set_cookies: Vec<String>,
    backend: String,
}

impl Answer {
    /// The value of our affinity cookie, if the response set one.
    fn affinity(&self) -> Option<String> {
        self.set_cookies
            .iter()
            .find_map(|c| c.strip_prefix("srv="))
            .map(|c| c.split(';').next().unwrap().to_owned())
    }
}

fn parse(head: &str, body: &[u8]) -> Answer {
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect::<Vec<_>>()
    };
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let backend = if status == 101 {
        header("x-backend").concat()
    } else {
        String::from_utf8_lossy(body).into_owned()
    };
    Answer {
        status,
        set_cookies: header("set-cookie"),
        backend,
    }
}

/// A plain GET on a fresh connection (so the pool does not decide), with `cookie` if not empty.
async fn get(addr: SocketAddr, cookie: &str) -> Answer {
    let cookie = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    let request = format!("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n{cookie}\r\n");
    let (mut stream, head) = raw_request(addr, &request).await;
    let body = read_to_end(&mut stream).await;
    let body = head_body(&head, body);
    parse(&head, &body)
}

/// The body without chunked framing (hyper chunks bodies of unknown length; ours are tiny).
fn head_body(head: &str, body: Vec<u8>) -> Vec<u8> {
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body;
    }
    let text = String::from_utf8(body).unwrap();
    text.split("\r\n")
        .skip(1)
        .step_by(2)
        .collect::<String>()
        .into_bytes()
}

/// A WebSocket upgrade with `cookie` if not empty; the tunnel is dropped.
async fn upgrade(addr: SocketAddr, cookie: &str) -> Answer {
    let extra = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    let (_stream, head) = raw_request(addr, &upgrade_request("/ws", &extra)).await;
    parse(&head, &[])
}

#[tokio::test]
async fn first_response_sets_the_cookie_and_it_holds_for_http_and_upgrades() {
    let a = backend("A").await;
    let b = backend("B").await;
    let running = start(&config(&[&a, &b], STICKY)).await;
    let addr = running.listener_addr("public").unwrap();

    // Round robin spreads fresh clients; each first response names its endpoint.
    let mut sessions = Vec::new();
    for _ in 0..4 {
        let first = get(addr, "").await;
        assert_eq!(first.status, 200);
        let value = first.affinity().expect("a Set-Cookie for srv");
        let srv = first
            .set_cookies
            .iter()
            .find(|c| c.starts_with("srv="))
            .unwrap();
        // Plain listener: no Secure by default.
        assert_eq!(*srv, format!("srv={value}; Path=/; HttpOnly; SameSite=Lax"));
        assert_eq!(value.len(), 16);
        assert!(value.bytes().all(|b| b.is_ascii_hexdigit()));
        for addr_text in [a.addr.to_string(), b.addr.to_string()] {
            assert!(!srv.contains(&addr_text) && !srv.contains("127.0.0.1"));
        }
        // The backend's own cookie is kept beside ours.
        assert!(first
            .set_cookies
            .contains(&format!("own={}; Path=/", first.backend)));
        sessions.push((first.backend, value));
    }
    let owners: std::collections::BTreeSet<_> = sessions.iter().map(|s| s.0.clone()).collect();
    assert_eq!(owners.len(), 2, "{sessions:?}");

    for (owner, value) in &sessions {
        // Among other cookies, in one header or several: always the same endpoint, and no new cookie.
        let lists = [
            format!("srv={value}"),
            format!("theme=dark; srv={value}; own=x"),
        ];
        for cookie in &lists {
            for _ in 0..3 {
                let answer = get(addr, cookie).await;
                assert_eq!(
                    (&answer.backend, answer.affinity()),
                    (owner, None),
                    "{cookie}"
                );
                let answer = upgrade(addr, cookie).await;
                assert_eq!(answer.status, 101, "{answer:?}");
                assert_eq!(
                    (&answer.backend, answer.affinity()),
                    (owner, None),
                    "{cookie}"
                );
            }
        }
    }
    let split = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nCookie: a=b\r\nCookie: srv={}\r\n\r\n",
        sessions[0].1
    );
    let (mut stream, head) = raw_request(addr, &split).await;
    let body = head_body(&head, read_to_end(&mut stream).await);
    assert_eq!(parse(&head, &body).backend, sessions[0].0);

    // The backend sees the cookie: wsgate does not strip it.
    let expected = format!("srv={}", sessions[0].1);
    let seen = [&a, &b].map(|x| x.cookies.lock().unwrap().clone()).concat();
    assert!(seen.contains(&expected), "{seen:?}");
}

#[tokio::test]
async fn an_upgrade_without_a_cookie_gets_one_in_its_101() {
    let a = backend("A").await;
    let b = backend("B").await;
    let running = start(&config(&[&a, &b], STICKY)).await;
    let addr = running.listener_addr("public").unwrap();
    let first = upgrade(addr, "").await;
    assert_eq!(first.status, 101, "{first:?}");
    let value = first.affinity().expect("a Set-Cookie in the 101");
    assert!(first
        .set_cookies
        .contains(&format!("own={}; Path=/", first.backend)));
    for _ in 0..4 {
        let again = get(addr, &format!("srv={value}")).await;
        assert_eq!(
            (again.backend.as_str(), again.affinity()),
            (first.backend.as_str(), None)
        );
    }
    // A backend's refusal of an upgrade is its response too: it names the endpoint. (Which backend
    // refused: its own cookie says; the connection stays open, so the body is not read.)
    let (_stream, head) = raw_request(addr, &upgrade_request("/refuse", "")).await;
    let refused = parse(&head, &[]);
    assert_eq!(refused.status, 403, "{refused:?}");
    let by = match refused.set_cookies.iter().find(|c| c.starts_with("own=")) {
        Some(c) if c.starts_with("own=A;") => &a,
        Some(_) => &b,
        None => panic!("the backend's own cookie was lost: {refused:?}"),
    };
    let expected = wsgate::sticky_cookie_value("app", &by.addr.to_string());
    assert_eq!(refused.affinity(), Some(expected), "{refused:?}");
}

#[tokio::test]
async fn garbage_or_foreign_cookie_values_are_rebalanced_with_a_new_cookie() {
    let a = backend("A").await;
    let b = backend("B").await;
    let running = start(&config(&[&a, &b], STICKY)).await;
    let addr = running.listener_addr("public").unwrap();
    let known = [get(addr, "").await, get(addr, "").await].map(|x| x.affinity().unwrap());
    // A value for this address in another upstream, forged or stale values: none are ours.
    let foreign = wsgate::sticky_cookie_value("other", &a.addr.to_string());
    for cookie in [
        "srv=garbage",
        "srv=",
        "srv=0123456789abcdef",
        &format!("srv={foreign}"),
    ] {
        let answer = get(addr, cookie).await;
        assert_eq!(answer.status, 200);
        let new = answer
            .affinity()
            .unwrap_or_else(|| panic!("{cookie}: {answer:?}"));
        assert!(known.contains(&new), "{cookie}: {new}");
        let answer = upgrade(addr, cookie).await;
        assert_eq!(answer.status, 101);
        assert!(known.contains(&answer.affinity().unwrap()), "{cookie}");
    }
}

#[tokio::test]
async fn a_dead_endpoints_cookie_moves_to_a_live_one_with_a_new_cookie() {
    let a = backend("A").await;
    let b = backend("B").await;
    let running = start(&config(
        &[&a, &b],
        &format!("    max_fails: 1\n    fail_timeout: 30s\n{STICKY}"),
    ))
    .await;
    let addr = running.listener_addr("public").unwrap();
    let mut values = std::collections::BTreeMap::new();
    while values.len() < 2 {
        let first = get(addr, "").await;
        let value = first.affinity().unwrap();
        values.insert(first.backend, value);
    }
    let (on_a, on_b) = (
        format!("srv={}", values["A"]),
        format!("srv={}", values["B"]),
    );
    b.task.abort();
    eventually("B refuses", || {
        std::net::TcpStream::connect(b.addr).is_err().then_some(())
    })
    .await;
    // The connect to B fails and is retried on A, which the new cookie names.
    let moved = get(addr, &on_b).await;
    assert_eq!((moved.status, moved.backend.as_str()), (200, "A"));
    assert_eq!(moved.affinity().as_ref(), Some(&values["A"]));
    // B is ejected now: its cookie goes straight to A, for upgrades too.
    let moved = upgrade(addr, &on_b).await;
    assert_eq!((moved.status, moved.backend.as_str()), (101, "A"));
    assert_eq!(moved.affinity().as_ref(), Some(&values["A"]));
    let stays = get(addr, &on_a).await;
    assert_eq!((stays.backend.as_str(), stays.affinity()), ("A", None));
}

#[tokio::test]
async fn an_unhealthy_endpoints_cookie_is_rebalanced_until_it_is_back() {
    let a = backend("A").await;
    let b = backend("B").await;
    let running = start(&config(
        &[&a, &b],
        &format!("    health: {{ path: /healthz, interval: 100ms, timeout: 80ms }}\n{STICKY}"),
    ))
    .await;
    let addr = running.listener_addr("public").unwrap();
    let b_value = loop {
        let first = get(addr, "").await;
        if first.backend == "B" {
            break first.affinity().unwrap();
        }
    };
    let on_b = format!("srv={b_value}");
    let b_up = |up: f64| {
        let labels = [("upstream", "app"), ("endpoint", &b.addr.to_string()[..])];
        (metric(
            &running.metrics_text(),
            "wsgate_upstream_endpoint_up",
            &labels,
        ) == Some(up))
        .then_some(())
    };
    b.healthy.store(false, Ordering::SeqCst);
    eventually("B checked down", || b_up(0.0)).await;
    let moved = get(addr, &on_b).await;
    assert_eq!(moved.backend, "A");
    let a_value = moved.affinity().expect("a new cookie naming A");
    assert_ne!(a_value, b_value);
    b.healthy.store(true, Ordering::SeqCst);
    eventually("B checked up", || b_up(1.0)).await;
    // The old cookie works again; the new one stays on A.
    let back = get(addr, &on_b).await;
    assert_eq!((back.backend.as_str(), back.affinity()), ("B", None));
    let stays = get(addr, &format!("srv={a_value}")).await;
    assert_eq!((stays.backend.as_str(), stays.affinity()), ("A", None));
}

#[tokio::test]
async fn a_replica_or_a_restart_routes_the_cookie_alike() {
    let a = backend("A").await;
    let b = backend("B").await;
    let c = backend("C").await;
    let yaml = config(&[&a, &b, &c], STICKY);
    let first = start(&yaml).await;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let answer = get(first.listener_addr("public").unwrap(), "").await;
        sessions.push((answer.backend.clone(), answer.affinity().unwrap()));
    }
    drop(first);
    // Another process's view: the same endpoints in another order, another balancer.
    let replica = start(&config(
        &[&c, &a, &b],
        &format!("    balance: least_connections\n{STICKY}"),
    ))
    .await;
    let addr = replica.listener_addr("public").unwrap();
    for (owner, value) in &sessions {
        let answer = get(addr, &format!("srv={value}")).await;
        assert_eq!((&answer.backend, answer.affinity()), (owner, None));
    }
}

#[tokio::test]
async fn cookie_attributes_follow_the_config() {
    let a = backend("A").await;
    let block = "    sticky_cookie: { name: io_srv, path: /socket.io/, max_age: 2h, secure: true, http_only: false, same_site: none }";
    let running = start(&config(&[&a], block)).await;
    let answer = get(running.listener_addr("public").unwrap(), "").await;
    let value = wsgate::sticky_cookie_value("app", &a.addr.to_string());
    let expected = format!("io_srv={value}; Path=/socket.io/; Max-Age=7200; SameSite=None; Secure");
    assert!(answer.set_cookies.contains(&expected), "{answer:?}");
}

/// A self-signed certificate for localhost in a fresh directory: (cert path, key path, DER).
fn self_signed(tag: &str) -> (String, String, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("wsgate-sticky-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (pem, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&pem, cert.cert.pem()).unwrap();
    std::fs::write(&key, cert.key_pair.serialize_pem()).unwrap();
    let der = cert.cert.der().to_vec();
    (pem.display().to_string(), key.display().to_string(), der)
}

/// The Set-Cookie values of a GET over TLS.
async fn get_over_tls(addr: SocketAddr, der: &[u8]) -> Vec<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.to_vec().into()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, tls.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap().to_owned();
    parse(&head, &[]).set_cookies
}

#[tokio::test]
async fn secure_by_default_on_tls_listeners_only() {
    let a = backend("A").await;
    let (cert, key, der) = self_signed("secure");
    let yaml = |secure: &str| {
        format!(
            r#"
listeners:
  - {{ name: public, bind: "127.0.0.1:0" }}
  - {{ name: tls, bind: "127.0.0.1:0", tls: {{ cert: "{cert}", key: "{key}" }} }}
upstreams:
  app:
    endpoints: ["{}"]
    sticky_cookie: {{ name: srv{secure} }}
routes: [{{ name: app, upstream: app }}]
"#,
            a.addr
        )
    };
    let value = wsgate::sticky_cookie_value("app", &a.addr.to_string());
    let plain = format!("srv={value}; Path=/; HttpOnly; SameSite=Lax");
    let secure = format!("{plain}; Secure");
    for (setting, over_tcp, over_tls) in [
        ("", &plain, &secure),
        (", secure: true", &secure, &secure),
        (", secure: false", &plain, &plain),
    ] {
        let running = start(&yaml(setting)).await;
        let tcp = get(running.listener_addr("public").unwrap(), "").await;
        assert!(tcp.set_cookies.contains(over_tcp), "{setting}: {tcp:?}");
        let tls = get_over_tls(running.listener_addr("tls").unwrap(), &der).await;
        assert!(tls.contains(over_tls), "{setting}: {tls:?}");
    }
}
