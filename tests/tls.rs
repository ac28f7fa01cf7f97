//! TLS on both legs, with certificates made in the test: wss:// from a real client through a TLS
//! listener (SNI, ALPN), config errors naming the file, https:// / wss:// to a TLS backend, and
//! active health checks that reach a TLS backend through the upstream's TLS settings.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use support::*;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;

struct Pki {
    dir: PathBuf,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("wsgate-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Pki { dir, ca, ca_key }
    }

    /// Writes `<file>.pem` and `<file>.key` for `names`; returns the certificate's DER.
    fn issue(&self, file: &str, names: &[&str]) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.ca, &self.ca_key)
            .unwrap();
        std::fs::write(self.dir.join(format!("{file}.pem")), cert.pem()).unwrap();
        std::fs::write(self.dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
        cert.der().to_vec()
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    fn connector(&self) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca.der().to_vec()))
            .unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsConnector::from(Arc::new(config))
    }
}

fn tls_listener_config(pki: &Pki, backend: SocketAddr) -> String {
    format!(
        r#"
listeners:
  - name: public
    bind: "127.0.0.1:0"
    tls:
      cert: "{cert}"
      key: "{key}"
      sni: [{{ host: other.test, cert: "{other_cert}", key: "{other_key}" }}]
upstreams: {{ echo: {{ endpoints: ["{backend}"] }} }}
routes: [{{ name: echo, upstream: echo }}]
"#,
        cert = pki.path("server.pem"),
        key = pki.path("server.key"),
        other_cert = pki.path("other.pem"),
        other_key = pki.path("other.key"),
    )
}

async fn tls_connect(
    pki: &Pki,
    addr: SocketAddr,
    name: &str,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    pki.connector()
        .connect(name, tcp)
        .await
        .expect("TLS handshake with wsgate")
}

#[tokio::test]
async fn wss_through_a_tls_listener_with_sni() {
    let pki = Pki::new("listener");
    let default_der = pki.issue("server", &["localhost"]);
    let other_der = pki.issue("other", &["other.test"]);
    let (backend, seen) = echo_backend().await;
    let running = start(&tls_listener_config(&pki, backend)).await;
    let addr = running.listener_addr("public").unwrap();

    let tls = tls_connect(&pki, addr, "localhost").await;
    let (_, session) = tls.get_ref();
    assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(
        session.peer_certificates().unwrap()[0].as_ref(),
        &default_der[..]
    );
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/ws", tls)
        .await
        .unwrap();
    ws.send(Message::text("over tls")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("over tls"));
    let proto: Vec<_> = seen
        .lock()
        .unwrap()
        .request_headers
        .iter()
        .filter(|(k, _)| k == "x-forwarded-proto")
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(proto, ["https"]);

    // TLS 1.2 too.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(pki.ca.der().to_vec()))
        .unwrap();
    let tls12 = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let old = TlsConnector::from(Arc::new(tls12))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("a TLS 1.2 handshake");
    assert_eq!(
        old.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );

    // SNI picks the other certificate.
    let tls = tls_connect(&pki, addr, "other.test").await;
    assert_eq!(
        tls.get_ref().1.peer_certificates().unwrap()[0].as_ref(),
        &other_der[..]
    );
}

#[tokio::test]
async fn unreadable_or_mismatched_files_are_config_errors_naming_them() {
    let pki = Pki::new("errors");
    pki.issue("server", &["localhost"]);
    pki.issue("other", &["other.test"]);
    let (backend, _) = echo_backend().await;
    let good = tls_listener_config(&pki, backend);
    assert!(wsgate::Config::from_yaml(&good).is_ok());

    let missing = good.replace(&pki.path("server.pem"), &pki.path("nope.pem"));
    let errors = wsgate::Config::from_yaml(&missing).unwrap_err().messages();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("listeners[0].tls: "), "{errors:?}");
    assert!(errors[0].contains("nope.pem"), "{errors:?}");

    let mismatched = good.replace(&pki.path("server.key"), &pki.path("other.key"));
    let errors = wsgate::Config::from_yaml(&mismatched)
        .unwrap_err()
        .messages();
    assert!(
        errors[0].contains("server.pem") && errors[0].contains("other.key"),
        "{errors:?}"
    );
    assert!(errors[0].contains("does not match"), "{errors:?}");
}

/// A TLS backend's `/healthz`: the status it answers, and the Host of each probe it got.
struct Health {
    status: AtomicU16,
    hosts: Mutex<Vec<String>>,
}

impl Health {
    fn new(status: u16) -> Arc<Health> {
        Arc::new(Health {
            status: AtomicU16::new(status),
            hosts: Mutex::default(),
        })
    }

    fn probes(&self) -> usize {
        self.hosts.lock().unwrap().len()
    }
}

/// A TLS backend (certificate for localhost and 127.0.0.1): answers GET with "secure", `/healthz`
/// as `health` says, and echoes WebSocket messages; with `client_auth`, it requires a client
/// certificate issued by the test CA.
async fn tls_backend(pki: &Pki) -> SocketAddr {
    tls_backend_with(pki, false, Health::new(200)).await
}

async fn tls_backend_with(pki: &Pki, client_auth: bool, health: Arc<Health>) -> SocketAddr {
    pki.issue("backend", &["localhost", "127.0.0.1"]);
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(pki.dir.join("backend.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(pki.dir.join("backend.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if client_auth {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(pki.ca.der().to_vec()))
            .unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder.with_single_cert(chain, key).unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = socket.accept().await {
            let acceptor = acceptor.clone();
            let health = health.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    let health = health.clone();
                    async move {
                        if req.uri().path() == "/healthz" {
                            let host = req
                                .headers()
                                .get("host")
                                .map_or("", |h| h.to_str().unwrap());
                            health.hosts.lock().unwrap().push(host.to_owned());
                            let status = health.status.load(Ordering::SeqCst);
                            let mut response = hyper::Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            return Ok::<_, Infallible>(response);
                        }
                        let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
                            return Ok::<_, Infallible>(hyper::Response::new(Full::new(
                                Bytes::from("secure"),
                            )));
                        };
                        let accept = wsgate_proto::handshake::accept_key(key.as_bytes());
                        let upgrade = hyper::upgrade::on(&mut req);
                        tokio::spawn(async move {
                            let Ok(upgraded) = upgrade.await else { return };
                            let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                                TokioIo::new(upgraded),
                                Role::Server,
                                None,
                            )
                            .await;
                            while let Some(Ok(msg)) = ws.next().await {
                                if msg.is_text() && ws.send(msg).await.is_err() {
                                    return;
                                }
                            }
                        });
                        let response = hyper::Response::builder()
                            .status(101)
                            .header("upgrade", "websocket")
                            .header("connection", "Upgrade")
                            .header("sec-websocket-accept", accept)
                            .body(Full::new(Bytes::new()))
                            .unwrap();
                        Ok(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

fn upstream_tls_config(backend: SocketAddr, tls: &str) -> String {
    format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" }}]
upstreams: {{ secure: {{ endpoints: ["{backend}"], tls: {tls} }} }}
routes: [{{ name: secure, upstream: secure }}]
"#
    )
}

#[tokio::test]
async fn https_and_wss_to_a_tls_backend() {
    let pki = Pki::new("upstream");
    let backend = tls_backend(&pki).await;
    let tls = format!(
        r#"{{ ca: "{}", server_name: localhost }}"#,
        pki.path("ca.pem")
    );
    let running = start(&upstream_tls_config(backend, &tls)).await;
    let addr = running.listener_addr("public").unwrap();
    let (mut stream, head) = raw_request(
        addr,
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(read_to_end(&mut stream).await, b"secure");
    let mut ws = ws_client(addr, "/ws").await;
    ws.send(Message::text("to a wss backend")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("to a wss backend")
    );
}

#[tokio::test]
async fn failed_upstream_tls_handshake_is_502_with_a_metric() {
    let pki = Pki::new("badname");
    let backend = tls_backend(&pki).await;
    // The certificate is for localhost; verifying another name fails.
    let tls = format!(
        r#"{{ ca: "{}", server_name: wrong.test }}"#,
        pki.path("ca.pem")
    );
    let yaml = upstream_tls_config(backend, &tls).replace(
        "listeners: [{ name: public, bind: \"127.0.0.1:0\" }]",
        "listeners: [{ name: public, bind: \"127.0.0.1:0\" }]\nadmin: { bind: \"127.0.0.1:0\" }",
    );
    let running = start(&yaml).await;
    let addr = running.listener_addr("public").unwrap();
    let (_, head) = raw_request(addr, &upgrade_request("/", "")).await;
    assert!(head.starts_with("HTTP/1.1 502 "), "{head}");
    let (_, head) = raw_request(addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 502 "), "{head}");
    let labels = [
        ("upstream", "secure"),
        ("endpoint", &backend.to_string()[..]),
    ];
    assert_eq!(
        metric(
            &running.metrics_text(),
            "wsgate_upstream_connect_errors_total",
            &labels
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn client_certificate_toward_an_upstream_that_requires_one() {
    let pki = Pki::new("mtls");
    let backend = tls_backend_with(&pki, true, Health::new(200)).await;
    pki.issue("client", &["wsgate.test"]);
    let with_cert = format!(
        r#"{{ ca: "{}", server_name: localhost, cert: "{}", key: "{}" }}"#,
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key")
    );
    let running = start(&upstream_tls_config(backend, &with_cert)).await;
    let addr = running.listener_addr("public").unwrap();
    let mut ws = ws_client(addr, "/ws").await;
    ws.send(Message::text("mutual")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("mutual"));
    // Without the certificate the backend refuses the handshake.
    let without = format!(
        r#"{{ ca: "{}", server_name: localhost }}"#,
        pki.path("ca.pem")
    );
    let running = start(&upstream_tls_config(backend, &without)).await;
    let (_, head) = raw_request(
        running.listener_addr("public").unwrap(),
        &upgrade_request("/", ""),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 502 "), "{head}");
}

fn endpoint_up(running: &wsgate::Running, backend: SocketAddr) -> Option<f64> {
    let labels = [
        ("upstream", "secure"),
        ("endpoint", &backend.to_string()[..]),
    ];
    metric(
        &running.metrics_text(),
        "wsgate_upstream_endpoint_up",
        &labels,
    )
}

async fn get_status(addr: SocketAddr) -> String {
    let (_, head) = raw_request(
        addr,
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .await;
    head.lines().next().unwrap_or("").to_owned()
}

async fn ws_round_trip(addr: SocketAddr, text: &str) {
    let mut ws = ws_client(addr, "/ws").await;
    ws.send(Message::text(text)).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(text));
}

#[tokio::test]
async fn health_checks_reach_a_tls_backend_with_its_ca_name_and_client_certificate() {
    let pki = Pki::new("health-up");
    let health = Health::new(200);
    // The backend requires a client certificate: a probe without the upstream's TLS settings fails.
    let backend = tls_backend_with(&pki, true, health.clone()).await;
    pki.issue("client", &["wsgate.test"]);
    let tls = format!(
        r#"{{ ca: "{}", server_name: localhost, cert: "{}", key: "{}" }}"#,
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key")
    );
    let yaml = upstream_tls_config(backend, &tls).replace(
        "tls: {",
        "health: { path: /healthz, interval: 300ms, timeout: 250ms }, tls: {",
    );
    let running = start(&yaml).await;
    let addr = running.listener_addr("public").unwrap();
    // Three probes arrived, so at least two got their answer and set the verdict.
    eventually("three probes", || (health.probes() >= 3).then_some(())).await;
    assert_eq!(endpoint_up(&running, backend), Some(1.0));
    assert!(health
        .hosts
        .lock()
        .unwrap()
        .iter()
        .all(|h| h == "localhost"));
    let mut ws = ws_client(addr, "/ws").await;
    assert_eq!(get_status(addr).await, "HTTP/1.1 200 OK");
    let seen = health.probes();
    eventually("three more probes", || {
        (health.probes() >= seen + 3).then_some(())
    })
    .await;
    assert_eq!(endpoint_up(&running, backend), Some(1.0));
    // The tunnel opened before keeps working, and new requests of both kinds are served.
    ws.send(Message::text("while probed")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("while probed")
    );
    assert_eq!(get_status(addr).await, "HTTP/1.1 200 OK");
    ws_round_trip(addr, "after probes").await;
}

#[tokio::test]
async fn a_tls_backend_failing_its_health_check_is_ejected_and_comes_back() {
    let pki = Pki::new("health-down");
    let health = Health::new(500);
    let backend = tls_backend_with(&pki, false, health.clone()).await;
    // No server_name: the certificate is verified for the endpoint's IP, and probes carry its Host.
    let tls = format!(r#"{{ ca: "{}" }}"#, pki.path("ca.pem"));
    let yaml = upstream_tls_config(backend, &tls).replace(
        "tls: {",
        "health: { path: /healthz, interval: 300ms, timeout: 250ms }, tls: {",
    );
    let running = start(&yaml).await;
    let addr = running.listener_addr("public").unwrap();
    eventually("checked down", || {
        (endpoint_up(&running, backend) == Some(0.0)).then_some(())
    })
    .await;
    assert!(health.probes() >= 1);
    assert_eq!(health.hosts.lock().unwrap()[0], backend.to_string());
    assert_eq!(get_status(addr).await, "HTTP/1.1 503 Service Unavailable");
    let (_, head) = raw_request(addr, &upgrade_request("/ws", "")).await;
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");

    health.status.store(200, Ordering::SeqCst);
    eventually("checked up", || {
        (endpoint_up(&running, backend) == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(get_status(addr).await, "HTTP/1.1 200 OK");
    ws_round_trip(addr, "back up").await;
}
