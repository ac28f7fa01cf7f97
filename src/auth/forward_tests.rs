//! Forward auth against real auth services on 127.0.0.1 (the peers are in `forward_support.rs`).

use std::error::Error as _;
use std::sync::atomic::Ordering;

use tokio::net::TcpListener;

use super::*;

#[path = "forward_support.rs"]
mod support;
use support::{answer, auth, deny, raw, service, settings, values, Client};

#[tokio::test]
async fn allow_carries_exactly_the_copy_headers_with_all_their_values() {
    let service = service(|| {
        answer(
            200,
            &[
                ("x-user", "alice"),
                ("x-groups", "admins"),
                ("x-groups", "ops"),
                ("x-other", "not listed"),
                ("keep-alive", "timeout=5"),
            ],
            b"ok",
        )
    })
    .await;
    let auth = ForwardAuth::new(ForwardSettings {
        copy_headers: [
            "x-user",
            "x-groups",
            "x-absent",
            "content-length",
            "keep-alive",
        ]
        .map(HeaderName::from_static)
        .to_vec(),
        ..settings(service.url.clone())
    })
    .unwrap();
    let Decision::Allow(allowed) = auth.check(&Client::upgrade().subject()).await.unwrap() else {
        panic!("denied");
    };
    assert_eq!(allowed.len(), 3, "{allowed:?}");
    assert_eq!(values(&allowed, "x-user"), ["alice"]);
    assert_eq!(values(&allowed, "x-groups"), ["admins", "ops"]);

    // On the upstream request they replace the client's, and a listed name the service did not
    // send is removed rather than left forged.
    let mut upstream = HeaderMap::new();
    for (name, value) in [
        ("x-user", "mallory"),
        ("x-absent", "forged"),
        ("cookie", "a=1"),
    ] {
        upstream.append(name, HeaderValue::from_static(value));
    }
    auth.apply(allowed, &mut upstream);
    assert_eq!(values(&upstream, "x-user"), ["alice"]);
    assert_eq!(values(&upstream, "x-groups"), ["admins", "ops"]);
    assert!(!upstream.contains_key("x-absent"));
    assert_eq!(values(&upstream, "cookie"), ["a=1"]);
}

#[tokio::test]
async fn a_401_is_relayed_as_sent() {
    let body: &[u8] = b"<h1>sign in</h1>\x00\xff\r\n";
    let service = service(move || {
        answer(
            401,
            &[
                ("www-authenticate", r#"Basic realm="wsgate""#),
                ("content-type", "text/html"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
                ("keep-alive", "timeout=5"),
            ],
            body,
        )
    })
    .await;
    let response = deny(&auth(service.url.clone())).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.body().as_ref(), body);
    let headers = response.headers();
    assert_eq!(
        values(headers, "www-authenticate"),
        [r#"Basic realm="wsgate""#]
    );
    assert_eq!(values(headers, "content-type"), ["text/html"]);
    assert_eq!(values(headers, "set-cookie"), ["a=1", "b=2"]);
    assert_eq!(values(headers, "content-length"), [body.len().to_string()]);
    assert!(!headers.contains_key("keep-alive"));
}

#[tokio::test]
async fn a_302_is_relayed_with_its_location() {
    let service = service(|| {
        answer(
            302,
            &[("location", "https://login.example/?rd=%2Fchat")],
            b"",
        )
    })
    .await;
    let response = deny(&auth(service.url.clone())).await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        values(response.headers(), "location"),
        ["https://login.example/?rd=%2Fchat"]
    );
    assert!(response.body().is_empty());
}

#[tokio::test]
async fn a_chunked_403_is_relayed_without_its_framing() {
    let reply = b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n3\r\nno!\r\n0\r\n\r\n";
    let (url, _) = raw(Some(reply.to_vec())).await;
    let response = deny(&auth(url)).await;
    assert_eq!(response.status(), 403);
    assert_eq!(response.body().as_ref(), b"no!");
    assert_eq!(values(response.headers(), "content-type"), ["text/plain"]);
    assert!(!response.headers().contains_key("transfer-encoding"));
}

#[tokio::test]
async fn other_statuses_are_the_service_failing() {
    for status in [500, 404, 400] {
        let service = service(move || answer(status, &[], b"broken")).await;
        let error = auth(service.url.clone())
            .check(&Client::upgrade().subject())
            .await
            .unwrap_err();
        assert!(
            matches!(error, ForwardError::Unexpected(s) if s == status),
            "{error:?}"
        );
        assert_eq!(error.status(), 500);
    }
}

/// Paused time works with real sockets here: the loopback connect and the write of the request
/// are ready at once, so the runtime is idle (and the clock jumps to the deadline) only while the
/// service sits on the request.
#[tokio::test(start_paused = true)]
async fn a_service_that_never_answers_times_out() {
    let (url, accepted) = raw(None).await;
    let auth = ForwardAuth::new(ForwardSettings {
        timeout: Duration::from_secs(30),
        ..settings(url)
    })
    .unwrap();
    let (start, wall) = (Instant::now(), std::time::Instant::now());
    let error = auth.check(&Client::upgrade().subject()).await.unwrap_err();
    assert!(
        matches!(error, ForwardError::Timeout(t) if t == Duration::from_secs(30)),
        "{error:?}"
    );
    assert_eq!(error.status(), 503);
    assert!(start.elapsed() >= Duration::from_secs(30));
    assert!(
        wall.elapsed() < Duration::from_secs(5),
        "the clock was paused"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_refused_connection_is_503() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/auth").parse().unwrap();
    let error = auth(url)
        .check(&Client::upgrade().subject())
        .await
        .unwrap_err();
    assert!(matches!(error, ForwardError::Connect(_)), "{error:?}");
    assert_eq!(error.status(), 503);
}

#[tokio::test]
async fn the_service_is_told_about_the_client_but_never_gets_its_upgrade() {
    let service = service(|| answer(200, &[], b"")).await;
    let auth = ForwardAuth::new(ForwardSettings {
        pass_headers: [
            "cookie",
            "authorization",
            "upgrade",
            "connection",
            "sec-websocket-key",
            "sec-websocket-version",
            "proxy-authorization",
            "content-length",
            "x-named",
            "host",
            "x-forwarded-for",
        ]
        .map(HeaderName::from_static)
        .to_vec(),
        ..settings(service.url.clone())
    })
    .unwrap();
    auth.check(&Client::upgrade().subject()).await.unwrap();
    let seen = service.seen.lock().unwrap();
    let [request] = &seen[..] else {
        panic!("{} requests", seen.len())
    };
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.uri(), "/auth?rd=1");
    let mut headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
        .collect();
    headers.sort_unstable();
    let host = service.url.authority().unwrap().as_str();
    assert_eq!(
        headers,
        [
            ("authorization", "Bearer t0ken"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("host", host),
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-host", "app.example"),
            ("x-forwarded-method", "GET"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-uri", "/chat?room=1"),
        ]
    );
}

#[tokio::test]
async fn forwarded_host_falls_back_to_the_uri_authority() {
    let service = service(|| answer(200, &[], b"")).await;
    let client = Client {
        method: Method::POST,
        uri: "http://app.example:8080/x".parse().unwrap(),
        headers: HeaderMap::new(),
    };
    let subject = Subject {
        proto: "http",
        ..client.subject()
    };
    auth(service.url.clone()).check(&subject).await.unwrap();
    let seen = service.seen.lock().unwrap();
    let headers = seen[0].headers();
    assert_eq!(headers["x-forwarded-host"], "app.example:8080");
    assert_eq!(headers["x-forwarded-method"], "POST");
    assert_eq!(headers["x-forwarded-uri"], "/x");
    assert_eq!(headers["x-forwarded-proto"], "http");
}

/// The Allow's body (32 KiB: more than comes with the head) is read to its end, so the connection
/// goes back to the pool; dropped unread, it would not (checked by hand).
#[tokio::test]
async fn sequential_checks_share_one_connection() {
    let service = service(|| answer(200, &[], &[b'k'; 32 * 1024])).await;
    let auth = auth(service.url.clone());
    let client = Client::upgrade();
    for _ in 0..2 {
        let decision = auth.check(&client.subject()).await.unwrap();
        assert!(matches!(decision, Decision::Allow(_)), "{decision:?}");
    }
    assert_eq!(service.seen.lock().unwrap().len(), 2);
    assert_eq!(service.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_denial_body_over_64_kib_is_refused() {
    // Announced by Content-Length: refused before reading.
    let service = service(|| answer(401, &[], &vec![b'x'; 1024 * 1024])).await;
    let error = auth(service.url.clone())
        .check(&Client::upgrade().subject())
        .await
        .unwrap_err();
    assert!(matches!(error, ForwardError::BodyTooLarge), "{error:?}");
    assert_eq!(error.status(), 503);

    // Chunked: counted as it arrives.
    let mut reply = b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..64 {
        reply.extend_from_slice(b"4000\r\n");
        reply.extend_from_slice(&[b'x'; 0x4000]);
        reply.extend_from_slice(b"\r\n");
    }
    reply.extend_from_slice(b"0\r\n\r\n");
    let (url, _) = raw(Some(reply)).await;
    let error = auth(url)
        .check(&Client::upgrade().subject())
        .await
        .unwrap_err();
    assert!(matches!(error, ForwardError::BodyTooLarge), "{error:?}");
}

/// A real error of each variant and its status, one row each; each keeps its cause.
#[tokio::test]
async fn status_and_cause_of_every_variant() {
    let check = |url: Uri| async move {
        auth(url)
            .check(&Client::upgrade().subject())
            .await
            .unwrap_err()
    };
    let refused = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{addr}/").parse().unwrap()
    };
    let (hung_up, _) = raw(Some(Vec::new())).await;
    let (short_body, _) = raw(Some(
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 100\r\n\r\nshort".to_vec(),
    ))
    .await;
    let big = service(|| answer(403, &[], &vec![b'x'; MAX_DENY_BODY + 1])).await;
    let broken = service(|| answer(500, &[], b"")).await;
    let table: Vec<(ForwardError, u16, bool)> = vec![
        (ForwardError::Timeout(Duration::from_secs(1)), 503, false),
        (check(refused).await, 503, true),
        (check(hung_up).await, 503, true),
        (check(big.url.clone()).await, 503, false),
        (check(short_body).await, 503, true),
        (check(broken.url.clone()).await, 500, false),
    ];
    for (i, (error, status, has_source)) in table.iter().enumerate() {
        // Fails to compile when a variant is added, and checks that each row is the one named.
        let row = match error {
            ForwardError::Timeout(_) => 0,
            ForwardError::Connect(_) => 1,
            ForwardError::Exchange(_) => 2,
            ForwardError::BodyTooLarge => 3,
            ForwardError::Body(_) => 4,
            ForwardError::Unexpected(_) => 5,
        };
        assert_eq!(row, i, "{error:?}");
        assert_eq!(error.status().as_u16(), *status, "{error:?}");
        assert_eq!(error.source().is_some(), *has_source, "{error:?}");
    }
}

#[test]
fn settings_are_checked() {
    let new = |url: &str| ForwardAuth::new(settings(url.parse().unwrap()));
    assert!(matches!(
        new("ftp://auth.example/"),
        Err(SettingsError::Scheme { .. })
    ));
    assert!(matches!(new("/auth"), Err(SettingsError::Scheme { .. })));
    assert!(matches!(
        new("http://user:pw@auth.example/"),
        Err(SettingsError::UserInfo { .. })
    ));
    assert!(new("http://auth.example:9000").is_ok());
    assert!(new("https://auth.example/verify").is_ok(), "system roots");
}

#[test]
fn forward_auth_is_shared_across_tasks() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ForwardAuth>();
}
