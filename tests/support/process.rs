//! wsgate as a child process (the binary the CLI tests and signal tests run): its spawn, its log
//! lines, the addresses it logged, its signals, and a port picked for it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::eventually;

/// A port that was free a moment ago. Racy: between this returning and the child binding it, another
/// test may take it (the child then fails to start). Where wsgate binds it, prefer port 0 and
/// `bound_addr`; keep this for ports written into files wsgate does not bind (a dead endpoint, the
/// example config's fixed ports).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The lines of a child's log (from `spawn_wsgate`) that contain `text`, as they stand now.
pub fn log_lines(lines: &Mutex<Vec<String>>, text: &str) -> Vec<String> {
    let lines = lines.lock().unwrap();
    lines.iter().filter(|l| l.contains(text)).cloned().collect()
}

/// The `wsgate` binary run on `yaml` (written to a temp file) with `args`, its stderr lines collected.
pub fn spawn_wsgate(
    name: &str,
    yaml: &str,
    args: &[&str],
) -> (
    std::process::Child,
    Arc<Mutex<Vec<String>>>,
    std::path::PathBuf,
) {
    use std::io::BufRead;
    let path = std::env::temp_dir().join(format!("wsgate-{}-{name}.yaml", std::process::id()));
    std::fs::write(&path, yaml).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(args)
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            sink.lock().unwrap().push(line);
        }
    });
    (child, lines, path)
}

/// The address wsgate logged for the listener `name` (`"admin"` for the admin listener) once it bound
/// it: lets the child bind 127.0.0.1:0, so no port is picked before it is bound. Reads the text and
/// the JSON log formats (`addr=…` / `"addr":"…"`); panics after the timeout.
pub async fn bound_addr(lines: &Arc<Mutex<Vec<String>>>, name: &str) -> SocketAddr {
    eventually(&format!("wsgate to log the {name} listener"), || {
        let lines = lines.lock().unwrap();
        lines.iter().find_map(|line| {
            let ours = if name == "admin" {
                line.contains("admin listening")
            } else {
                line.contains("listening")
                    && (line.contains(&format!("listener={name} "))
                        || line.contains(&format!("\"listener\":\"{name}\"")))
            };
            if !ours {
                return None;
            }
            let (_, rest) = line
                .split_once("addr=")
                .or_else(|| line.split_once("\"addr\":\""))?;
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']')))
                .unwrap_or(rest.len());
            rest[..end].parse().ok()
        })
    })
    .await
}

/// A child process ended however the test ends, so that a failing assertion leaves nothing running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `signal` (e.g. "-TERM") to a child process.
pub fn signal(child: &std::process::Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
