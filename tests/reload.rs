//! Hot reload: routes and upstreams swap for new requests while open tunnels keep running; listeners
//! are added and removed; an invalid file or a bind failure keeps the old configuration.

mod support;

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use support::*;
use tokio_tungstenite::tungstenite::Message;

fn config(listeners: &str, backend: SocketAddr) -> String {
    format!(
        r#"
listeners: [{listeners}]
admin: {{ bind: "127.0.0.1:0" }}
upstreams: {{ app: {{ endpoints: ["{backend}"] }} }}
routes: [{{ name: app, upstream: app }}]
"#
    )
}

const PUBLIC: &str = r#"{ name: public, bind: "127.0.0.1:0" }"#;

async fn echo(
    ws: &mut (impl SinkExt<Message>
              + StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
              + Unpin),
    text: &str,
) {
    let _ = ws.send(Message::text(text)).await;
    let got = tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got, Message::text(text));
}

#[tokio::test]
async fn route_change_applies_to_new_connections_and_spares_open_tunnels() {
    let (a, seen_a) = echo_backend().await;
    let (b, seen_b) = echo_backend().await;
    let running = start(&config(PUBLIC, a)).await;
    let addr = running.listener_addr("public").unwrap();
    let mut old = ws_client(addr, "/").await;
    echo(&mut old, "before").await;

    let new_config = wsgate::Config::from_yaml(&config(PUBLIC, b)).unwrap();
    running.reload(new_config).await.unwrap();
    // The listener was kept (same address), the open tunnel still runs to A, new ones go to B.
    assert_eq!(running.listener_addr("public"), Some(addr));
    echo(&mut old, "old tunnel").await;
    let mut new = ws_client(addr, "/").await;
    echo(&mut new, "new tunnel").await;
    assert_eq!(texts(&seen_a), ["before", "old tunnel"]);
    assert_eq!(texts(&seen_b), ["new tunnel"]);
    let labels = [("result", "success")];
    assert_eq!(
        metric(
            &running.metrics_text(),
            "wsgate_config_reloads_total",
            &labels
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn invalid_file_keeps_the_old_configuration() {
    let (a, seen_a) = echo_backend().await;
    let running = start(&config(PUBLIC, a)).await;
    let addr = running.listener_addr("public").unwrap();
    let path = std::env::temp_dir().join(format!("wsgate-{}-bad-reload.yaml", std::process::id()));
    std::fs::write(&path, "routes: [{ upstream: nowhere }]\n").unwrap();
    match running.reload_file(&path).await {
        Err(wsgate::ReloadError::Config(e)) => {
            assert_eq!(e.messages().len(), 2, "{:?}", e.messages())
        }
        other => panic!("{other:?}"),
    }
    let mut ws = ws_client(addr, "/").await;
    echo(&mut ws, "still A").await;
    assert_eq!(texts(&seen_a), ["still A"]);
    let labels = [("result", "failure")];
    assert_eq!(
        metric(
            &running.metrics_text(),
            "wsgate_config_reloads_total",
            &labels
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn listeners_are_added_and_removed_and_tunnels_survive() {
    let (a, _) = echo_backend().await;
    let running = start(&config(PUBLIC, a)).await;
    let public = running.listener_addr("public").unwrap();
    let mut tunnel = ws_client(public, "/").await;
    let second = r#"{ name: second, bind: "127.0.0.1:0" }"#;
    running
        .reload(wsgate::Config::from_yaml(&config(second, a)).unwrap())
        .await
        .unwrap();
    let second_addr = running.listener_addr("second").expect("the new listener");
    assert_eq!(running.listener_addr("public"), None);
    let mut ws = ws_client(second_addr, "/").await;
    echo(&mut ws, "via second").await;
    // The removed listener accepts nothing more, but its tunnel lives on.
    assert!(tokio::net::TcpStream::connect(public).await.is_err());
    echo(&mut tunnel, "still open").await;
}

#[tokio::test]
async fn bind_failure_keeps_everything_old() {
    let (a, seen_a) = echo_backend().await;
    let (b, seen_b) = echo_backend().await;
    let running = start(&config(PUBLIC, a)).await;
    let addr = running.listener_addr("public").unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = format!(
        r#"{PUBLIC}, {{ name: busy, bind: "{}" }}"#,
        taken.local_addr().unwrap()
    );
    let result = running
        .reload(wsgate::Config::from_yaml(&config(&busy, b)).unwrap())
        .await;
    assert!(
        matches!(result, Err(wsgate::ReloadError::Bind(_))),
        "{result:?}"
    );
    assert_eq!(running.listener_addr("busy"), None);
    let mut ws = ws_client(addr, "/").await;
    echo(&mut ws, "A, not B").await;
    assert_eq!(texts(&seen_a), ["A, not B"]);
    assert!(texts(&seen_b).is_empty());
}

#[tokio::test]
async fn sighup_reloads_the_file() {
    let (a, seen_a) = echo_backend().await;
    let (b, seen_b) = echo_backend().await;
    // Port 0 stays the same bind across the reload, so the listener is kept.
    let listener = r#"{ name: public, bind: "127.0.0.1:0" }"#.to_owned();
    let (mut child, lines, path) = spawn_wsgate("sighup", &config(&listener, a), &[]);
    let logged = |text: &'static str| {
        let lines = lines.clone();
        move || (!log_lines(&lines, text).is_empty()).then_some(())
    };
    let addr = bound_addr(&lines, "public").await;
    let mut old = ws_client(addr, "/").await;
    echo(&mut old, "one").await;
    let hup = || signal(&child, "-HUP");

    // An invalid file: every error is logged, the old config stays.
    std::fs::write(&path, "listeners: []\nroutes: [{ upstream: x }]\n").unwrap();
    hup();
    eventually("refusal logged", logged("reload refused")).await;
    let refusals = log_lines(&lines, "reload refused").len();
    assert_eq!(refusals, 2, "{:?}", lines.lock().unwrap());

    // A valid one: new connections follow it.
    std::fs::write(&path, config(&listener, b)).unwrap();
    hup();
    eventually("reloaded", logged("configuration reloaded")).await;
    let mut new = ws_client(addr, "/").await;
    echo(&mut new, "two").await;
    echo(&mut old, "three").await;
    assert_eq!(texts(&seen_a), ["one", "three"]);
    assert_eq!(texts(&seen_b), ["two"]);
    drop((old, new));
    signal(&child, "-TERM");
    assert!(child.wait().unwrap().success());
}

/// SIGHUP to the binary: what the new file adds (an endpoint, an upstream, a route, a listener) is
/// exported at 0 right after the reload, next to what was there from the start.
#[tokio::test]
async fn sighup_exports_the_series_of_what_the_new_file_adds() {
    let file = |extra_endpoint: &str, extra: &str, extra_route: &str| {
        format!(
            r#"
listeners:
  - {{ name: public, bind: "127.0.0.1:0" }}{extra}
admin: {{ bind: "127.0.0.1:0" }}
upstreams:
  app: {{ endpoints: ["127.0.0.1:9001"{extra_endpoint}] }}
  side: {{ endpoints: ["127.0.0.1:9003"] }}
routes:
  - {{ name: app, upstream: app }}{extra_route}
"#
        )
    };
    let (child, lines, path) = spawn_wsgate("preset", &file("", "", ""), &[]);
    let child = KillOnDrop(child);
    let logged = |text: &'static str, times: usize| {
        let lines = lines.clone();
        move || (log_lines(&lines, text).len() >= times).then_some(())
    };
    let admin = bound_addr(&lines, "admin").await;
    preset::assert_known_series(
        &scrape(admin).await,
        &preset::Known {
            listeners: &["public"],
            upstreams: &[("app", &["127.0.0.1:9001"]), ("side", &["127.0.0.1:9003"])],
            routes: &["app"],
            reloads: [0.0, 0.0],
        },
    );

    std::fs::write(
        &path,
        file(
            r#", "127.0.0.1:9002""#,
            "\n  - { name: second, bind: \"127.0.0.1:0\" }",
            "\n  - { name: side, match: { path_prefix: \"/side\" }, upstream: side }",
        ),
    )
    .unwrap();
    signal(&child.0, "-HUP");
    eventually("reloaded", logged("configuration reloaded", 1)).await;
    preset::assert_known_series(
        &scrape(admin).await,
        &preset::Known {
            listeners: &["public", "second"],
            upstreams: &[
                ("app", &["127.0.0.1:9001", "127.0.0.1:9002"]),
                ("side", &["127.0.0.1:9003"]),
            ],
            routes: &["app", "side"],
            reloads: [1.0, 0.0],
        },
    );
}
