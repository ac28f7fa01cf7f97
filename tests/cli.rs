//! The `wsgate` binary: --version, `check` on good and bad files, and `demo` end to end.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use futures_util::{SinkExt, StreamExt};
use support::*;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_wsgate");

fn temp_yaml(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("wsgate-{}-{name}.yaml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn check(path: &PathBuf) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("wsgate {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_accepts_the_shipped_configs() {
    for file in ["config/example.yaml", "config/wsgate.yaml"] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file);
        let (code, stdout, stderr) = check(&path);
        assert_eq!(code, 0, "{file}: {stderr}");
        assert!(stdout.contains(": ok ("), "{stdout}");
    }
}

#[test]
fn check_prints_every_semantic_error() {
    let path = temp_yaml(
        "semantic",
        r#"
listeners:
  - { name: a, bind: "127.0.0.1:8080" }
  - { name: b, bind: "127.0.0.1:8080" }
upstreams:
  u: { endpoints: ["127.0.0.1:1"], connect_timeout: "2 fortnights" }
routes:
  - { upstream: missing }
"#,
    );
    let (code, _, stderr) = check(&path);
    assert_eq!(code, 1);
    for expected in [
        "listeners[1].bind: 127.0.0.1:8080 is bound by another listener",
        "upstreams.u.connect_timeout: \"2 fortnights\" is not a duration",
        "routes[0].upstream: \"missing\" is not defined in upstreams",
    ] {
        assert!(stderr.contains(expected), "{expected} in {stderr}");
    }
    assert_eq!(stderr.lines().count(), 3, "{stderr}");
}

#[test]
fn check_refuses_settings_that_can_never_work() {
    let path = temp_yaml(
        "never",
        r#"
listeners: [{ name: a, bind: "127.0.0.1:0" }]
upstreams:
  u:
    endpoints: ["127.0.0.1:1"]
    health: { path: /health, interval: 1s, timeout: 1s }
routes:
  - match: { host: "chat.*.com" }
    upstream: u
    websocket: { allowed_origins: ["https://ok.example.com", "example.com"] }
"#,
    );
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 1, "{stdout}");
    let source = path.display();
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            format!("{source}: upstreams.u.health.timeout: 1s is not below health.interval (1s)"),
            format!("{source}: routes[0].match.host: \"chat.*.com\": only a leading \"*.\" wildcard is supported (e.g. \"*.example.com\")"),
            format!("{source}: routes[0].websocket.allowed_origins[1]: \"example.com\" is not an origin: browsers send scheme://host[:port] (e.g. \"https://example.com\")"),
        ]
    );
}

/// Warnings are printed by `check` (exit 0) and logged by the running proxy at start and on SIGHUP.
#[tokio::test]
async fn warnings_are_printed_and_logged() {
    let yaml = r#"
listeners: [{ name: a, bind: "127.0.0.1:0" }]
upstreams:
  u: { endpoints: ["127.0.0.1:1"] }
  spare: { endpoints: ["127.0.0.1:2"] }
routes:
  - upstream: u
    websocket: { allowed_origins: ["null"] }
"#;
    let path = temp_yaml("warnings", yaml);
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 0, "{stderr}");
    let source = path.display();
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            format!("{source}: warning: routes[0].websocket.allowed_origins[0]: \"null\" is the origin of sandboxed iframes and file:// pages: any site can send it"),
            format!("{source}: warning: upstreams.spare: no route uses it"),
        ]
    );
    assert_eq!(
        stdout.trim(),
        format!("{source}: ok (1 listeners, 2 upstreams, 1 routes, 2 warnings)")
    );

    let (child, lines, _) = spawn_wsgate("warnings-run", yaml, &[]);
    let child = KillOnDrop(child);
    let count = |text: &'static str| {
        let lines = lines.clone();
        move || log_lines(&lines, text).len()
    };
    let spare = count("config warning: upstreams.spare: no route uses it");
    let listening = count("listening");
    eventually("listening", || (listening() > 0).then_some(())).await;
    assert_eq!(spare(), 1, "{:?}", lines.lock().unwrap());
    signal(&child.0, "-HUP");
    eventually("the warning again after SIGHUP", || {
        (spare() == 2).then_some(())
    })
    .await;
}

#[test]
fn check_reports_unknown_keys_and_syntax_with_lines() {
    let path = temp_yaml(
        "unknown",
        "listeners:\n  - name: a\n    bind: \"127.0.0.1:0\"\n    colour: blue\n",
    );
    let (code, _, stderr) = check(&path);
    assert_eq!(code, 1);
    assert!(stderr.contains("line 4"), "{stderr}");
    assert!(stderr.contains("colour"), "{stderr}");

    let path = temp_yaml("syntax", "listeners: [ { name: a\n");
    let (code, _, stderr) = check(&path);
    assert_eq!(code, 1);
    assert!(stderr.contains("line "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let (code, _, stderr) = check(&PathBuf::from("/nonexistent/wsgate.yaml"));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("cannot read /nonexistent/wsgate.yaml"),
        "{stderr}"
    );
}

#[test]
fn run_with_a_bad_config_exits_1() {
    let path = temp_yaml("run-bad", "routes: []\n");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least one listener"));
}

#[tokio::test]
async fn demo_serves_websocket_http_and_metrics() {
    let (listen, admin, backend) = (free_port(), free_port(), free_port());
    let example = include_str!("../config/example.yaml")
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{listen}"))
        .replace("127.0.0.1:9901", &format!("127.0.0.1:{admin}"))
        .replace("127.0.0.1:9001", &format!("127.0.0.1:{backend}"));
    let path = temp_yaml("demo", &example);
    let mut child = Command::new(BIN)
        .args(["demo", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let banner: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.starts_with("Ctrl-C"))
        .collect();
    let banner = banner.join("\n");
    assert!(
        banner.contains(&format!("ws://127.0.0.1:{listen}/ws")),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("http://127.0.0.1:{admin}/metrics")),
        "{banner}"
    );

    let addr: std::net::SocketAddr = format!("127.0.0.1:{listen}").parse().unwrap();
    let mut ws = ws_client(addr, "/ws").await;
    ws.send(Message::text("demo")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("demo"));
    let (_, head) = raw_request(addr, "GET / HTTP/1.1\r\nHost: demo\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(head.contains("text/html"), "{head}");
    let metrics = scrape(format!("127.0.0.1:{admin}").parse().unwrap()).await;
    let labels = [
        ("route", "echo"),
        ("direction", "client_to_upstream"),
        ("opcode", "text"),
    ];
    assert_eq!(
        metric(&metrics, "wsgate_ws_frames_total", &labels),
        Some(1.0)
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn sigterm_and_sighup() {
    let path = temp_yaml(
        "signals",
        "listeners: [{ name: a, bind: \"127.0.0.1:0\" }]\nupstreams: { u: { endpoints: [\"127.0.0.1:1\"] } }\nroutes: [{ upstream: u }]\n",
    );
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "wsgate exited early"
        );
    }
    let signal = |name: &str| {
        let ok = Command::new("kill")
            .args([name, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    };
    // SIGHUP reloads (the file is unchanged) and never kills the process, even right after start.
    signal("-HUP");
    line.clear();
    while !line.contains("SIGHUP") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "wsgate died on SIGHUP"
        );
    }
    signal("-TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// `--threads 1` runs everything on one thread (tokio's current-thread scheduler), any other count
/// a pool of that many workers; both proxy a tunnel, and the count is logged. 0 is refused.
#[tokio::test]
async fn threads_flag_picks_the_scheduler() {
    let (backend, _) = echo_backend().await;
    for threads in ["1", "3"] {
        let yaml = config(backend, "{}");
        let (child, lines, _) = spawn_wsgate("threads", &yaml, &["--threads", threads]);
        let _child = KillOnDrop(child);
        let logged = |text: String| {
            let lines = lines.clone();
            move || {
                let lines = lines.lock().unwrap();
                lines.iter().any(|l| l.contains(&text)).then_some(())
            }
        };
        let addr = bound_addr(&lines, "public").await;
        eventually("thread count", logged(format!("threads={threads}"))).await;
        let mut ws = ws_client(addr, "/").await;
        ws.send(Message::text(threads)).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(threads));
        // The log is plain text when stderr is not a terminal.
        assert!(!lines.lock().unwrap().iter().any(|l| l.contains('\x1b')));
    }
    let out = Command::new(BIN).args(["--threads", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads"));
}
