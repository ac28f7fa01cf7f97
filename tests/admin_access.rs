//! Who may use the admin API: `admin.token_file` (Bearer token for closes and taps, for listings
//! too with `admin.protect_reads`, read again on reload), the loopback rule without a token file,
//! probes and metrics that never need one, and the config's refusals.

mod admin;
mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use admin::{answer_close, only_id, Admin, Answer};
use support::*;

/// A token file of this test's own, holding `token`.
fn token_file(name: &str, token: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("wsgate-admin-{}-{name}.token", std::process::id()));
    std::fs::write(&path, token).unwrap();
    path
}

/// One route `echo` to `backend`, the admin listener on `bind` with `extra` keys.
fn yaml(backend: SocketAddr, bind: &str, extra: &str) -> String {
    format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" }}]
admin: {{ bind: "{bind}" {extra} }}
upstreams: {{ echo: {{ endpoints: ["{backend}"] }} }}
routes: [{{ name: echo, upstream: echo }}]
"#
    )
}

fn with_file(path: &std::path::Path) -> String {
    format!(", token_file: \"{}\"", path.display())
}

fn assert_unauthorized(answer: &Answer) {
    let error = answer.error(401);
    assert!(error.contains("token"), "{error}");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"wsgate admin\"")
    );
}

/// Probes, metrics and the page answer without a token, whatever the policy.
async fn open_endpoints_answer(admin: &Admin) {
    for path in ["/metrics", "/healthz", "/readyz", "/"] {
        assert_eq!(admin.get(path).await.status, 200, "{path}");
    }
}

const BULK: &str = "/tunnels/close?route=nothing&spread=0s";

#[tokio::test]
async fn with_a_token_file_closes_and_taps_need_the_bearer_token() {
    let (backend, _) = echo_backend().await;
    let file = token_file("writes", "s3cret\n");
    let running = start(&yaml(backend, "127.0.0.1:0", &with_file(&file))).await;
    let addr = running.listener_addr("public").unwrap();
    let anyone = Admin::of(&running);
    let wrong = anyone.with_token("s3cret-not");
    let right = anyone.with_token("s3cret");
    let mut client = RawClient::connect(addr).await;
    let id = only_id(&anyone, "echo").await;
    let close = format!("/tunnels/{id}/close");
    let tap = format!("/tunnels/{id}/tap?limit=1");
    for who in [&anyone, &wrong] {
        assert_unauthorized(&who.post(&close).await);
        assert_unauthorized(&who.post(BULK).await);
        assert_unauthorized(&who.get(&tap).await);
    }
    // Reads need none; nothing was closed.
    assert_eq!(anyone.list("").await[0]["state"], "open");
    assert_eq!(anyone.get(&format!("/tunnels/{id}")).await.status, 200);
    open_endpoints_answer(&anyone).await;
    let answer = right.post(BULK).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let mut tapped = right.tap(id, "?limit=1").await;
    client.send(&client_frame(0x81, b"hi")).await;
    assert_eq!(tapped.line().await.unwrap()["direction"], "client");
    let closing = {
        let right = right.clone();
        tokio::spawn(async move { right.post(&close).await })
    };
    assert_eq!(answer_close(&mut client.stream).await.0, 1001);
    let answer = closing.await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["state"], "closed");
    std::fs::remove_file(file).unwrap();
}

#[tokio::test]
async fn protect_reads_makes_listings_need_the_token_too() {
    let (backend, _) = echo_backend().await;
    let file = token_file("reads", "reader");
    let extra = format!("{}, protect_reads: true", with_file(&file));
    let running = start(&yaml(backend, "127.0.0.1:0", &extra)).await;
    let addr = running.listener_addr("public").unwrap();
    let anyone = Admin::of(&running);
    let right = anyone.with_token("reader");
    let _client = RawClient::connect(addr).await;
    let id = only_id(&right, "echo").await;
    for target in ["/tunnels".to_owned(), format!("/tunnels/{id}")] {
        assert_unauthorized(&anyone.get(&target).await);
        assert_unauthorized(&anyone.with_token("nope").get(&target).await);
        assert_eq!(right.get(&target).await.status, 200, "{target}");
    }
    open_endpoints_answer(&anyone).await;
    std::fs::remove_file(file).unwrap();
}

#[tokio::test]
async fn the_token_is_read_again_on_reload() {
    let (backend, _) = echo_backend().await;
    let file = token_file("reload", "old-token");
    let config = yaml(backend, "127.0.0.1:0", &with_file(&file));
    let running = start(&config).await;
    let admin = Admin::of(&running);
    assert_eq!(admin.with_token("old-token").post(BULK).await.status, 202);
    std::fs::write(&file, "new-token\n").unwrap();
    // Not before the reload.
    assert_eq!(admin.with_token("old-token").post(BULK).await.status, 202);
    running
        .reload(wsgate::Config::from_yaml(&config).unwrap())
        .await
        .expect("the reload applies");
    assert_unauthorized(&admin.with_token("old-token").post(BULK).await);
    assert_eq!(admin.with_token("new-token").post(BULK).await.status, 202);
    // A token file that holds nothing fails the reload and keeps the token in force.
    std::fs::write(&file, " \n").unwrap();
    let failed = running
        .reload(wsgate::Config::from_yaml(&config).unwrap())
        .await;
    assert!(failed.is_err(), "an empty token file is refused");
    assert_eq!(admin.with_token("new-token").post(BULK).await.status, 202);
    std::fs::remove_file(file).unwrap();
}

/// wsgate with its admin listener on 0.0.0.0 (not a loopback address), reached over 127.0.0.1;
/// `None` when this machine lets no test bind it.
async fn on_every_address(backend: SocketAddr, extra: &str) -> Option<(wsgate::Running, Admin)> {
    let config = wsgate::Config::from_yaml(&yaml(backend, "0.0.0.0:0", extra)).unwrap();
    let running = match wsgate::start(config).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("SKIPPED: the admin listener cannot bind 0.0.0.0 here ({e})");
            return None;
        }
    };
    let bound = running.admin_addr().unwrap();
    assert!(!bound.ip().is_loopback(), "{bound}");
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), bound.port());
    Some((running, Admin { addr, token: None }))
}

#[tokio::test]
async fn without_a_token_file_closes_and_taps_need_a_loopback_admin_listener() {
    let (backend, _) = echo_backend().await;
    let Some((running, admin)) = on_every_address(backend, "").await else {
        return;
    };
    let addr = running.listener_addr("public").unwrap();
    let _client = RawClient::connect(addr).await;
    let id = only_id(&admin, "echo").await;
    for answer in [
        admin.post(BULK).await,
        admin.post(&format!("/tunnels/{id}/close")).await,
        admin.get(&format!("/tunnels/{id}/tap")).await,
    ] {
        let error = answer.error(403);
        assert!(error.contains("loopback"), "{error}");
        assert!(answer.header("www-authenticate").is_none());
    }
    assert_eq!(admin.list("").await[0]["state"], "open");
    open_endpoints_answer(&admin).await;

    // With a token file, the token opens them on any address.
    let file = token_file("any-address", "wide");
    let Some((_running, admin)) = on_every_address(backend, &with_file(&file)).await else {
        return;
    };
    assert_unauthorized(&admin.post(BULK).await);
    assert_eq!(admin.with_token("wide").post(BULK).await.status, 202);
    std::fs::remove_file(file).unwrap();
}

#[tokio::test]
async fn on_loopback_without_a_token_file_closes_need_none() {
    let (backend, _) = echo_backend().await;
    let running = start(&yaml(backend, "127.0.0.1:0", "")).await;
    let answer = Admin::of(&running).post(BULK).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
}

#[tokio::test]
async fn the_config_refuses_protect_reads_without_a_token_file_and_a_missing_file() {
    let (backend, _) = echo_backend().await;
    let bad = yaml(backend, "127.0.0.1:0", ", protect_reads: true");
    let errors = wsgate::Config::from_yaml(&bad).unwrap_err().messages();
    assert_eq!(
        errors,
        ["admin.protect_reads: needs admin.token_file (the token reads must carry)"]
    );
    let missing = std::env::temp_dir().join(format!("wsgate-admin-{}-missing", std::process::id()));
    let config = yaml(backend, "127.0.0.1:0", &with_file(&missing));
    let config = wsgate::Config::from_yaml(&config).expect("read at start, not at validation");
    let error = wsgate::start(config).await.err().expect("start fails");
    let text = error.to_string();
    assert!(
        text.contains("admin.token_file") && text.contains("missing"),
        "{text}"
    );
}
