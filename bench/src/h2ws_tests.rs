//! The HTTP/2 client against an in-process h2 server over TLS that echoes WebSocket frames on
//! extended CONNECT streams, and against servers that get each step wrong.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::RecvStream;
use http::{Request, Response};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::echo::Echo;
use crate::{h2idle, h2throughput, tls};

/// What the test server does differently from a good one.
#[derive(Clone, Copy, PartialEq)]
enum Server {
    Good,
    /// ALPN `http/1.1` only.
    Http1,
    /// HTTP/2 without SETTINGS_ENABLE_CONNECT_PROTOCOL.
    NoConnectProtocol,
    /// Answers every extended CONNECT with 403.
    Forbids,
}

/// An h2 echo server for `localhost` on 127.0.0.1:0; returns its URL and CA PEM.
async fn serve(kind: Server) -> (Url, String) {
    let alpn: &[u8] = if kind == Server::Http1 {
        b"http/1.1"
    } else {
        b"h2"
    };
    let (config, ca) = tls::tests::localhost_server(vec![alpn.to_vec()]);
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if kind == Server::Http1 {
                    return;
                }
                let mut builder = h2::server::Builder::new();
                if kind != Server::NoConnectProtocol {
                    builder.enable_connect_protocol();
                }
                let Ok(mut conn) = builder.handshake::<_, Bytes>(tls).await else {
                    return;
                };
                while let Some(Ok((request, respond))) = conn.accept().await {
                    tokio::spawn(echo_stream(request, respond, kind));
                }
            });
        }
    });
    let url = crate::ws::parse_url(&format!("wss://localhost:{port}/chat")).unwrap();
    (url, ca)
}

/// One stream: 200 for `CONNECT` with `:protocol websocket` to /chat, then every frame echoed.
async fn echo_stream(request: Request<RecvStream>, mut respond: SendResponse<Bytes>, kind: Server) {
    let websocket = request.method() == Method::CONNECT
        && request.uri().path() == "/chat"
        && request.uri().scheme_str() == Some("https")
        && request.extensions().get::<Protocol>().map(Protocol::as_str) == Some("websocket")
        && request.headers()["sec-websocket-version"] == "13";
    let status = if kind == Server::Forbids {
        403
    } else if websocket {
        200
    } else {
        400
    };
    let response = Response::builder().status(status).body(()).unwrap();
    let Ok(mut send) = respond.send_response(response, status != 200) else {
        return;
    };
    if status != 200 {
        return;
    }
    let mut body = request.into_body();
    let (mut echo, mut pending) = (Echo::default(), Vec::new());
    while let Some(Ok(data)) = body.data().await {
        let _ = body.flow_control().release_capacity(data.len());
        pending.extend_from_slice(&data);
        let mut out = Vec::new();
        let used = echo.step(&mut pending, &mut out);
        pending.drain(..used);
        if !out.is_empty() && send.send_data(out.into(), false).is_err() {
            return;
        }
    }
}

async fn target(url: &Url, ca: &str) -> H2 {
    H2::with_config(url, tls::client_config(ca.as_bytes()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn streams_echo_over_extended_connect() {
    let (url, ca) = serve(Server::Good).await;
    let h2 = target(&url, &ca).await;
    let conn = h2.connect().await.unwrap();
    let mut rng = Rng::new(1);
    let mut a = h2.open(&conn).await.unwrap();
    let mut b = h2.open(&conn).await.unwrap();
    a.echo_once(&mut rng).await.unwrap();
    b.echo_once(&mut rng).await.unwrap();
    a.echo_once(&mut rng).await.unwrap();
    let fields = h2.json_fields();
    assert!(fields.starts_with(r#","tls":"TLSv1_3/"#), "{fields}");
    assert!(
        fields.contains(r#","alpn":"h2","server_max_streams":"#),
        "{fields}"
    );
}

#[tokio::test]
async fn throughput_counts_echoes_on_every_stream() {
    let (url, ca) = serve(Server::Good).await;
    let params = h2throughput::Params {
        url: format!("wss://{}/chat", url.authority),
        connections: 2,
        streams: 6,
        size: 1024,
        inflight: 4,
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(300),
        text: false,
    };
    let line = h2throughput::run(params, target(&url, &ca).await)
        .await
        .unwrap();
    assert!(
        line.starts_with(r#"{"mode":"throughput","protocol":"h2","#),
        "{line}"
    );
    assert!(
        line.contains(r#""connections":2,"streams":6,"size":1024,"#),
        "{line}"
    );
    assert!(line.contains(r#""errors":0,"#), "{line}");
    assert!(!line.contains(r#""messages":0,"#), "{line}");
}

#[tokio::test]
async fn idle_opens_every_stream_over_its_connections() {
    let (url, ca) = serve(Server::Good).await;
    let h2 = target(&url, &ca).await;
    let opened = h2idle::open_all(&h2, 3, 10).await.unwrap();
    assert_eq!((opened.conns.len(), opened.streams.len()), (3, 10));
    let line = h2idle::line("wss://x/", 3, 10, &opened, &h2);
    assert!(
        line.contains(
            r#""connections":3,"connections_open":3,"requested":10,"open":10,"failed":0"#
        ),
        "{line}"
    );
    assert!(h2idle::open_all(&h2, 4, 3).await.is_err());
}

#[tokio::test]
async fn a_server_without_h2_is_refused_at_alpn() {
    let (url, ca) = serve(Server::Http1).await;
    let err = target(&url, &ca).await.connect().await.err().unwrap();
    // rustls refuses a server that picks a protocol the client did not offer; one that picks none
    // would be `NotH2(None)`.
    assert!(
        matches!(err, H2Error::Connect(_) | H2Error::NotH2(_)),
        "{err}"
    );
}

#[tokio::test]
async fn a_server_without_extended_connect_is_an_error() {
    let (url, ca) = serve(Server::NoConnectProtocol).await;
    let err = target(&url, &ca).await.connect().await.err().unwrap();
    assert!(matches!(err, H2Error::NoExtendedConnect), "{err}");
}

#[tokio::test]
async fn a_refused_connect_keeps_its_status() {
    let (url, ca) = serve(Server::Forbids).await;
    let h2 = target(&url, &ca).await;
    let conn = h2.connect().await.unwrap();
    let err = h2.open(&conn).await.err().unwrap();
    assert!(
        matches!(err, H2Error::Refused(s) if s == StatusCode::FORBIDDEN),
        "{err}"
    );
}

#[tokio::test]
async fn a_ws_url_is_refused() {
    let url = crate::ws::parse_url("ws://127.0.0.1:1/").unwrap();
    let config = tls::client_config(
        rcgen::generate_simple_self_signed(vec!["x".into()])
            .unwrap()
            .cert
            .pem()
            .as_bytes(),
    )
    .unwrap();
    assert!(H2::with_config(&url, config).await.is_err());
}
