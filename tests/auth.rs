//! JWT at the upgrade (every key type, every place a token comes from, every refusal), claims
//! forwarded, the close at expiry, plain HTTP on an authenticated route, and forward auth against a
//! real HTTP auth service.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use support::*;

const KEYS: &str = "tests/data/jwt";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token signed with the private key in `file` (or the HMAC secret).
fn sign(alg: Algorithm, file: &str, kid: Option<&str>, claims: serde_json::Value) -> String {
    let bytes = std::fs::read(format!("{KEYS}/{file}")).unwrap();
    let key = match alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 => {
            EncodingKey::from_rsa_pem(&bytes).unwrap()
        }
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&bytes).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&bytes).unwrap(),
        _ => {
            let secret = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
            EncodingKey::from_secret(secret)
        }
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, &claims, &key).unwrap()
}

fn claims() -> serde_json::Value {
    json!({ "sub": "user-42", "iss": "https://issuer.test", "aud": "chat", "exp": now() + 3600 })
}

/// One listener, the admin listener, and route `echo` to `backend` with `auth: { <auth> }`.
fn auth_config(backend: SocketAddr, auth: &str) -> String {
    format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:0" }}
upstreams: {{ echo: {{ endpoints: ["{backend}"] }} }}
routes:
  - name: echo
    upstream: echo
    auth: {{ {auth} }}
"#
    )
}

/// Route `echo` with `auth: { jwt: { keys: KEYS/<keys>, <jwt> } }`.
fn jwt_config(backend: SocketAddr, keys: &str, jwt: &str) -> String {
    auth_config(
        backend,
        &format!(r#"jwt: {{ keys: "{KEYS}/{keys}" {jwt} }}"#),
    )
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

fn handshakes(running: &wsgate::Running, result: &str) -> f64 {
    let labels = [("route", "echo"), ("result", result)];
    metric(
        &running.metrics_text(),
        "wsgate_ws_handshakes_total",
        &labels,
    )
    .unwrap_or(0.0)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Upgrades with `extra` headers and echoes one message; returns the response head.
async fn upgrade_and_echo(addr: SocketAddr, path: &str, extra: &str) -> String {
    let (mut stream, head) = raw_request(addr, &upgrade_request(path, extra)).await;
    if head.starts_with("HTTP/1.1 101") {
        use tokio::io::AsyncWriteExt;
        stream
            .write_all(&client_frame(0x81, b"hello"))
            .await
            .unwrap();
        assert_eq!(
            read_frame(&mut stream).await,
            Some((0x81, b"hello".to_vec()))
        );
    }
    head
}

#[tokio::test]
async fn every_key_type_verifies_its_tokens() {
    let cases = [
        (Algorithm::RS256, "rsa.pem", "rsa.pub.pem"),
        (Algorithm::RS384, "rsa.pem", "rsa.pub.pem"),
        (Algorithm::PS256, "rsa.pem", "rsa.pub.pem"),
        (Algorithm::ES256, "ec256.pem", "ec256.pub.pem"),
        (Algorithm::ES384, "ec384.pem", "ec384.pub.pem"),
        (Algorithm::EdDSA, "ed25519.pem", "ed25519.pub.pem"),
        (Algorithm::HS256, "hmac.secret", "hmac.secret"),
    ];
    let (backend, _) = echo_backend().await;
    for (alg, private, public) in cases {
        // A secret file must name its algorithm.
        let extra = if alg == Algorithm::HS256 {
            ", algorithms: [HS256]"
        } else {
            ""
        };
        let running = start(&jwt_config(backend, public, extra)).await;
        let addr = running.listener_addr("public").unwrap();
        let token = sign(alg, private, None, claims());
        let head = upgrade_and_echo(addr, "/", &bearer(&token)).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{alg:?}: {head}");
        assert_eq!(handshakes(&running, "ok"), 1.0, "{alg:?}");
    }
}

#[tokio::test]
async fn a_jwks_picks_the_key_by_kid() {
    let (backend, _) = echo_backend().await;
    let running = start(&jwt_config(backend, "jwks.json", "")).await;
    let addr = running.listener_addr("public").unwrap();
    for (alg, private, kid) in [
        (Algorithm::RS256, "rsa.pem", "rsa1"),
        (Algorithm::ES256, "ec256.pem", "ec1"),
        (Algorithm::EdDSA, "ed25519.pem", "ed1"),
    ] {
        let token = sign(alg, private, Some(kid), claims());
        let head = upgrade_and_echo(addr, "/", &bearer(&token)).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{kid}: {head}");
    }
    let token = sign(Algorithm::ES256, "ec256.pem", Some("nobody"), claims());
    let head = upgrade_and_echo(addr, "/", &bearer(&token)).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
}

#[tokio::test]
async fn refusals_get_401_or_403_and_are_counted() {
    let (backend, _) = echo_backend().await;
    let jwt = r#", issuer: "https://issuer.test", audiences: [chat], leeway: 0s"#;
    let running = start(&jwt_config(backend, "ec256.pub.pem", jwt)).await;
    let addr = running.listener_addr("public").unwrap();

    let head = upgrade_and_echo(addr, "/", "").await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert_eq!(header(&head, "www-authenticate"), Some("Bearer"));

    let mut c = claims();
    let es = |c: serde_json::Value| sign(Algorithm::ES256, "ec256.pem", None, c);

    let unauthorized = [
        ("garbage", "not.a.token".to_owned()),
        ("bad signature", {
            // Another token's signature on these claims.
            let token = es(claims());
            let other = es(json!({ "sub": "someone else", "exp": now() + 60 }));
            let (body, _) = token.rsplit_once('.').unwrap();
            format!("{body}.{}", other.rsplit_once('.').unwrap().1)
        }),
        (
            "hmac with an EC key",
            sign(Algorithm::HS256, "hmac.secret", None, claims()),
        ),
        (
            "other signer",
            sign(Algorithm::RS256, "rsa.pem", None, claims()),
        ),
        ("expired", {
            c["exp"] = json!(now() - 10);
            es(c.clone())
        }),
        ("not yet", {
            let mut c = claims();
            c["nbf"] = json!(now() + 600);
            es(c)
        }),
    ];
    for (what, token) in &unauthorized {
        let head = upgrade_and_echo(addr, "/", &bearer(token)).await;
        assert!(head.starts_with("HTTP/1.1 401"), "{what}: {head}");
        let challenge = header(&head, "www-authenticate").unwrap_or("");
        assert!(challenge.starts_with("Bearer"), "{what}: {head}");
    }
    let forbidden = [
        (
            "issuer",
            json!({ "iss": "https://other.test", "aud": "chat", "exp": now() + 60 }),
        ),
        (
            "audience",
            json!({ "iss": "https://issuer.test", "aud": ["mail", "news"], "exp": now() + 60 }),
        ),
    ];
    for (what, c) in forbidden {
        let head = upgrade_and_echo(addr, "/", &bearer(&es(c))).await;
        assert!(head.starts_with("HTTP/1.1 403"), "{what}: {head}");
    }
    let ok = json!({ "iss": "https://issuer.test", "aud": ["mail", "chat"], "exp": now() + 60 });
    let head = upgrade_and_echo(addr, "/", &bearer(&es(ok))).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");

    assert_eq!(
        handshakes(&running, "unauthorized"),
        1.0 + unauthorized.len() as f64
    );
    assert_eq!(handshakes(&running, "forbidden"), 2.0);
    assert_eq!(handshakes(&running, "ok"), 1.0);
}

#[tokio::test]
async fn tokens_come_from_the_query_a_cookie_or_the_subprotocol_and_the_query_one_is_removed() {
    let (backend, seen) = echo_backend().await;
    let jwt = r#", token_from: ["header:Authorization", "query:access_token", "cookie:session", "subprotocol:access_token."]"#;
    let running = start(&jwt_config(backend, "ec256.pub.pem", jwt)).await;
    let addr = running.listener_addr("public").unwrap();
    let token = sign(Algorithm::ES256, "ec256.pem", None, claims());

    let head = upgrade_and_echo(addr, &format!("/ws?room=1&access_token={token}"), "").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let cookie = format!("Cookie: theme=dark; session={token}\r\n");
    let head = upgrade_and_echo(addr, "/ws", &cookie).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let offer = format!("Sec-WebSocket-Protocol: chat, access_token.{token}\r\n");
    let head = upgrade_and_echo(addr, "/ws", &offer).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(header(&head, "sec-websocket-protocol"), Some("chat"));

    let seen = seen.lock().unwrap();
    assert_eq!(seen.paths[0], "/ws?room=1");
    let offers: Vec<&str> = seen
        .request_headers
        .iter()
        .filter(|(k, _)| k == "sec-websocket-protocol")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(offers, ["chat"]);
    assert!(seen.paths.iter().all(|p| !p.contains(&token)));
}

#[tokio::test]
async fn claims_go_to_the_backend_in_place_of_what_the_client_sent() {
    let (backend, seen) = echo_backend().await;
    let jwt = ", forward_claims: { sub: X-User-Id, aud: X-Audience }";
    let running = start(&jwt_config(backend, "ec256.pub.pem", jwt)).await;
    let addr = running.listener_addr("public").unwrap();
    let token = sign(Algorithm::ES256, "ec256.pem", None, claims());
    let extra = format!("{}X-User-Id: admin\r\n", bearer(&token));
    let head = upgrade_and_echo(addr, "/", &extra).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let seen = seen.lock().unwrap();
    let values = |name: &str| -> Vec<String> {
        seen.request_headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    };
    assert_eq!(values("x-user-id"), ["user-42"]);
    assert_eq!(values("x-audience"), ["chat"]);
}

#[tokio::test]
async fn a_tunnel_whose_token_expires_is_closed_with_1008() {
    let (backend, seen) = echo_backend().await;
    let jwt = ", leeway: 0s, close_on_expiry: true";
    let running = start(&jwt_config(backend, "ec256.pub.pem", jwt)).await;
    let addr = running.listener_addr("public").unwrap();
    let mut c = claims();
    c["exp"] = json!(now() + 2);
    let token = sign(Algorithm::ES256, "ec256.pem", None, c);
    let (mut stream, head) = raw_request(addr, &upgrade_request("/", &bearer(&token))).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // Waits for the event: the close comes when exp passes (within about 3 s), never a window.
    let close = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match read_frame(&mut stream).await {
                Some((0x88, payload)) => break payload,
                Some(_) => continue,
                None => panic!("no close frame within the read timeout"),
            }
        }
    })
    .await
    .expect("a close frame");
    assert_eq!(&close[..2], &1008u16.to_be_bytes());
    assert_eq!(&close[2..], b"token expired");
    let code = eventually("the backend's close", || {
        seen.lock().unwrap().messages.iter().find_map(|m| match m {
            Message::Close(frame) => Some(frame.as_ref().map(|f| u16::from(f.code))),
            _ => None,
        })
    })
    .await;
    assert_eq!(code, Some(1008));
    drop(running);
}

/// An HTTP backend answering every request with 200 "plain".
async fn plain_backend() -> SocketAddr {
    serve(|_req| (200, vec![], "plain".to_owned())).await.0
}

type Answer = (u16, Vec<(&'static str, String)>, String);
type Requests = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// A real HTTP/1.1 service: `answer` decides per request (from its headers); records every request's
/// headers, the request URI as `:uri`.
async fn serve(
    answer: impl Fn(&http::HeaderMap) -> Answer + Send + Sync + 'static,
) -> (SocketAddr, Requests) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests: Requests = Arc::default();
    let record = requests.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (record, answer) = (record.clone(), answer.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let mut seen: Vec<(String, String)> = req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                        .collect();
                    seen.push((":uri".into(), req.uri().to_string()));
                    record.lock().unwrap().push(seen);
                    let (status, headers, body) = answer(req.headers());
                    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
                    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                    for (k, v) in headers {
                        response.headers_mut().append(k, v.parse().unwrap());
                    }
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, requests)
}

#[tokio::test]
async fn plain_http_requests_on_the_route_are_checked_too() {
    let backend = plain_backend().await;
    let running = start(&jwt_config(backend, "ec256.pub.pem", "")).await;
    let addr = running.listener_addr("public").unwrap();
    let get = |extra: String| {
        format!("GET /page HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n")
    };
    let (_, head) = raw_request(addr, &get(String::new())).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert_eq!(header(&head, "www-authenticate"), Some("Bearer"));
    let token = sign(Algorithm::ES256, "ec256.pem", None, claims());
    let (mut stream, head) = raw_request(addr, &get(bearer(&token))).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(read_to_end(&mut stream).await, b"plain");
}

fn forward_config(backend: SocketAddr, auth: SocketAddr, extra: &str) -> String {
    let forward =
        format!(r#"forward: {{ url: "http://{auth}/check?svc=chat", timeout: 2s {extra} }}"#);
    auth_config(backend, &forward)
}

fn auth_answer(headers: &http::HeaderMap) -> Answer {
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some("Bearer good") => (
            200,
            vec![
                ("x-auth-user", "alice".into()),
                ("x-auth-role", "admin".into()),
            ],
            String::new(),
        ),
        Some("Bearer moved") => (
            302,
            vec![("location", "https://login.test/".into())],
            String::new(),
        ),
        Some("Bearer banned") => (403, vec![], "banned".into()),
        _ => (
            401,
            vec![("www-authenticate", "Basic realm=\"t\"".into())],
            "nope".into(),
        ),
    }
}

#[tokio::test]
async fn forward_auth_lets_2xx_through_with_its_headers_and_relays_refusals() {
    let (backend, seen) = echo_backend().await;
    let (auth, asked) = serve(auth_answer).await;
    let extra = ", copy_headers: [X-Auth-User, X-Auth-Role]";
    let running = start(&forward_config(backend, auth, extra)).await;
    let addr = running.listener_addr("public").unwrap();

    let forged = "Authorization: Bearer good\r\nX-Auth-User: mallory\r\nCookie: a=b\r\n";
    let head = upgrade_and_echo(addr, "/ws?room=9", forged).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    {
        let seen = seen.lock().unwrap();
        let users: Vec<&str> = seen
            .request_headers
            .iter()
            .filter(|(k, _)| k == "x-auth-user")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(users, ["alice"]);
        assert!(seen
            .request_headers
            .iter()
            .any(|(k, v)| k == "x-auth-role" && v == "admin"));
    }
    {
        let asked = asked.lock().unwrap();
        let first = &asked[0];
        let get = |name: &str| {
            first
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get(":uri"), Some("/check?svc=chat"));
        assert_eq!(get("x-forwarded-method"), Some("GET"));
        assert_eq!(get("x-forwarded-uri"), Some("/ws?room=9"));
        assert_eq!(get("x-forwarded-host"), Some("test.local"));
        assert_eq!(get("x-forwarded-for"), Some("127.0.0.1"));
        assert_eq!(get("x-forwarded-proto"), Some("http"));
        assert_eq!(get("cookie"), Some("a=b"));
        assert_eq!(get("authorization"), Some("Bearer good"));
        for never in ["upgrade", "sec-websocket-key", "sec-websocket-version"] {
            assert_eq!(get(never), None, "{never} reached the auth service");
        }
        assert_ne!(get("connection"), Some("Upgrade"));
    }

    let (mut stream, head) = raw_request(
        addr,
        &upgrade_request("/ws", "Authorization: Bearer bad\r\n"),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert_eq!(header(&head, "www-authenticate"), Some("Basic realm=\"t\""));
    assert_eq!(read_to_end(&mut stream).await, b"nope");
    let head = upgrade_and_echo(addr, "/ws", "Authorization: Bearer moved\r\n").await;
    assert!(head.starts_with("HTTP/1.1 302"), "{head}");
    assert_eq!(header(&head, "location"), Some("https://login.test/"));
    let head = upgrade_and_echo(addr, "/ws", "Authorization: Bearer banned\r\n").await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");

    assert_eq!(handshakes(&running, "ok"), 1.0);
    assert_eq!(handshakes(&running, "unauthorized"), 2.0);
    assert_eq!(handshakes(&running, "forbidden"), 1.0);
    let text = running.metrics_text();
    let count = metric(
        &text,
        "wsgate_auth_duration_seconds_count",
        &[("route", "echo")],
    );
    assert_eq!(count, Some(4.0));
}

#[tokio::test]
async fn an_auth_service_that_is_down_gives_503() {
    let (backend, _) = echo_backend().await;
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let running = start(&forward_config(backend, down, "")).await;
    let addr = running.listener_addr("public").unwrap();
    let head = upgrade_and_echo(addr, "/ws", "").await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert_eq!(handshakes(&running, "auth_unavailable"), 1.0);
}

#[tokio::test]
async fn a_reload_reads_the_key_file_again_and_a_bad_one_is_refused() {
    let (backend, _) = echo_backend().await;
    let dir = std::env::temp_dir().join(format!("wsgate-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key.pem");
    let yaml = || {
        format!(
            r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" }}]
upstreams: {{ echo: {{ endpoints: ["{backend}"] }} }}
routes: [{{ name: echo, upstream: echo, auth: {{ jwt: {{ keys: "{}" }} }} }}]
"#,
            key.display()
        )
    };
    std::fs::copy(format!("{KEYS}/ec256.pub.pem"), &key).unwrap();
    let running = start(&yaml()).await;
    let addr = running.listener_addr("public").unwrap();
    let ec = sign(Algorithm::ES256, "ec256.pem", None, claims());
    let ed = sign(Algorithm::EdDSA, "ed25519.pem", None, claims());
    assert!(upgrade_and_echo(addr, "/", &bearer(&ec))
        .await
        .starts_with("HTTP/1.1 101"));

    // The key is rotated: after the reload the new key's tokens pass and the old key's do not.
    std::fs::copy(format!("{KEYS}/ed25519.pub.pem"), &key).unwrap();
    running
        .reload(wsgate::Config::from_yaml(&yaml()).unwrap())
        .await
        .unwrap();
    assert!(upgrade_and_echo(addr, "/", &bearer(&ed))
        .await
        .starts_with("HTTP/1.1 101"));
    assert!(upgrade_and_echo(addr, "/", &bearer(&ec))
        .await
        .starts_with("HTTP/1.1 401"));

    // A file that no longer parses is a config error naming it; the keys in force stay.
    std::fs::write(
        &key,
        "-----BEGIN PUBLIC KEY-----\nbroken\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let refused = wsgate::Config::from_yaml(&yaml()).unwrap_err();
    assert!(
        refused.messages().iter().any(|m| m.contains("key.pem")),
        "{:?}",
        refused.messages()
    );
    assert!(upgrade_and_echo(addr, "/", &bearer(&ed))
        .await
        .starts_with("HTTP/1.1 101"));
    let _ = std::fs::remove_dir_all(&dir);
}
