//! `wsgate tunnels` against a fake admin listener: canned HTTP/1.1 answers, the requests it got
//! recorded, the binary's stdout, stderr and exit code checked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wsgate");
/// How long a test waits for any one event before it fails.
const WAIT: Duration = Duration::from_secs(10);

/// What the fake server got: the request line's parts and the headers (names lowercased).
#[derive(Debug)]
struct Recorded {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One connection's answer.
enum Answer {
    Json(u16, String),
    /// A chunked NDJSON stream: `first`, then `rest` once `gate` opens, then the connection is held
    /// open until the client closes it (so the client must stop at the end line on its own).
    Tap {
        first: Vec<String>,
        gate: Receiver<()>,
        rest: Vec<String>,
    },
}

struct Fake {
    addr: SocketAddr,
    requests: Receiver<Recorded>,
}

impl Fake {
    /// Serves `answers`, one connection each, in order.
    fn start(answers: Vec<Answer>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (record, requests) = channel();
        std::thread::spawn(move || {
            for answer in answers {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                serve(stream, answer, &record);
            }
        });
        Fake { addr, requests }
    }

    fn request(&self) -> Recorded {
        self.requests
            .recv_timeout(WAIT)
            .expect("the fake got a request")
    }

    fn admin(&self) -> String {
        self.addr.to_string()
    }
}

fn serve(mut stream: TcpStream, answer: Answer, record: &Sender<Recorded>) {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let Some(request) = read_head(&mut stream) else {
        return;
    };
    let _ = record.send(request);
    match answer {
        Answer::Json(status, body) => {
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(format!("{head}{body}").as_bytes());
        }
        Answer::Tap { first, gate, rest } => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n";
            let _ = stream.write_all(head.as_bytes());
            write_chunks(&mut stream, &first);
            if gate.recv_timeout(WAIT).is_err() {
                return;
            }
            write_chunks(&mut stream, &rest);
            // Held open until the client goes (read returns 0) or the read timeout.
            let _ = stream.read(&mut [0; 64]);
        }
    }
}

fn write_chunks(stream: &mut TcpStream, lines: &[String]) {
    for line in lines {
        let data = format!("{line}\n");
        let _ = stream.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes());
    }
    let _ = stream.flush();
}

/// The request line and headers, up to 64 KiB.
fn read_head(stream: &mut TcpStream) -> Option<Recorded> {
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 65_536 || stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Recorded {
        method,
        target,
        headers,
    })
}

/// Runs the binary to its end: exit code, stdout, stderr. Every request it makes has a timeout.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        out.status.code().expect("an exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsgate-admin-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tunnel(id: u64, route: &str, age_ms: u64, bytes_in: u64, bytes_out: u64) -> String {
    format!(
        r#"{{"id":{id},"route":"{route}","listener":"public","client":"127.0.0.1:53422",
        "upstream":"chat","endpoint":"127.0.0.1:9001","transport":"h1","subprotocol":"chat.v1",
        "extensions":null,"subject":null,"started":"2026-12-02T19:05:01.123Z","age_ms":{age_ms},
        "state":"open","from_client":{{"frames":3,"messages":3,"bytes":{bytes_in}}},
        "from_upstream":{{"frames":3,"messages":3,"bytes":{bytes_out}}},
        "last_data":"2026-12-02T19:05:06.000Z","idle_ms":120,"pings_answered":0}}"#
    )
}

fn first_column(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn the_list_is_a_table_oldest_first() {
    let body = format!(
        "[{},{}]",
        tunnel(5, "chat", 1_000, 15, 15),
        tunnel(3, "chat", 312_000, 1229, 0)
    );
    let fake = Fake::start(vec![Answer::Json(200, body)]);
    let (code, stdout, stderr) = run(&["tunnels", "--admin", &fake.admin()]);
    assert_eq!(code, 0, "{stderr}");
    let request = fake.request();
    assert_eq!(
        (request.method.as_str(), request.target.as_str()),
        ("GET", "/tunnels")
    );
    assert_eq!(request.header("authorization"), None);
    let header: Vec<&str> = stdout.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "ROUTE", "CLIENT", "ENDPOINT", "AGE", "IN", "OUT", "IDLE"]
    );
    assert_eq!(first_column(&stdout), ["ID", "3", "5"]);
    let oldest: Vec<&str> = stdout.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        oldest,
        [
            "3",
            "chat",
            "127.0.0.1:53422",
            "127.0.0.1:9001",
            "5m12s",
            "1.2KiB",
            "0B",
            "120ms"
        ]
    );
}

#[test]
fn the_route_filter_goes_to_the_server_and_bytes_sorts_the_busiest_first() {
    let body = format!(
        "[{},{}]",
        tunnel(1, "chat room", 9_000, 10, 10),
        tunnel(2, "chat room", 10, 5000, 1)
    );
    let fake = Fake::start(vec![Answer::Json(200, body)]);
    let args = [
        "tunnels",
        "--admin",
        &fake.admin(),
        "--route",
        "chat room",
        "--sort",
        "bytes",
    ];
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fake.request().target, "/tunnels?route=chat%20room");
    assert_eq!(first_column(&stdout), ["ID", "2", "1"]);
}

#[test]
fn an_empty_list_says_so() {
    let fake = Fake::start(vec![Answer::Json(200, "[]".into())]);
    let (code, stdout, _) = run(&["tunnels", "--admin", &fake.admin()]);
    assert_eq!((code, stdout.as_str()), (0, "no tunnels\n"));
}

#[test]
fn show_prints_every_field_and_a_404_is_exit_1() {
    let fake = Fake::start(vec![
        Answer::Json(200, tunnel(17, "chat", 5012, 15, 4)),
        Answer::Json(404, r#"{"error":"no tunnel 18"}"#.into()),
    ]);
    let (code, stdout, stderr) = run(&["tunnels", "--admin", &fake.admin(), "show", "17"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fake.request().target, "/tunnels/17");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "id: 17");
    for line in [
        "route: chat",
        "subprotocol: chat.v1",
        "extensions: -",
        "age_ms: 5012 (5s)",
    ] {
        assert!(lines.contains(&line), "{line} in {stdout}");
    }
    assert!(lines.contains(&"from_client.bytes: 15"), "{stdout}");
    assert!(lines.contains(&"from_upstream.bytes: 4"), "{stdout}");

    let (code, stdout, stderr) = run(&["tunnels", "show", "18", "--admin", &fake.admin()]);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert_eq!(stderr, "wsgate tunnels: no tunnel 18 (HTTP 404)\n");
}

#[test]
fn an_unreachable_listener_is_exit_1() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // The listener is dropped: nothing listens there now.
    let (code, _, stderr) = run(&["tunnels", "--admin", &addr.to_string()]);
    assert_eq!(code, 1);
    let expected = format!("wsgate tunnels: cannot reach the admin listener at {addr}: ");
    assert!(stderr.starts_with(&expected), "{stderr}");
}

#[test]
fn usage_errors_are_exit_2() {
    for args in [
        &["tunnels", "--bogus"][..],
        &["tunnels", "--sort", "size"],
        &["tunnels", "show", "abc"],
        &["tunnels", "close"],
        &["tunnels", "tap", "1", "--limit", "-3"],
        &["tunnels", "--route", "chat", "show", "1"],
    ] {
        let (code, _, stderr) = run(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
    }
}

#[test]
fn close_sends_the_code_the_encoded_reason_and_the_token() {
    let dir = temp_dir("close");
    let token = dir.join("token");
    std::fs::write(&token, "  s3cret \n").unwrap();
    let answer = tunnel(17, "chat", 10, 0, 0).replace(r#""state":"open""#, r#""state":"closed""#);
    let fake = Fake::start(vec![Answer::Json(200, answer)]);
    let token = token.to_str().unwrap();
    let args = [
        "tunnels",
        "--admin",
        &fake.admin(),
        "--token-file",
        token,
        "close",
        "17",
        "--code",
        "4000",
        "--reason",
        "bye now, see you/later",
    ];
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "tunnel 17 closed\n");
    let request = fake.request();
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.target,
        "/tunnels/17/close?code=4000&reason=bye%20now%2C%20see%20you%2Flater"
    );
    assert_eq!(request.header("authorization"), Some("Bearer s3cret"));
}

#[test]
fn an_unreadable_token_file_is_exit_1_before_any_request() {
    let missing = temp_dir("token").join("missing");
    let args = [
        "tunnels",
        "--admin",
        "127.0.0.1:9",
        "--token-file",
        missing.to_str().unwrap(),
    ];
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("wsgate tunnels: cannot read the token file "),
        "{stderr}"
    );
}

#[test]
fn the_config_gives_the_address_and_the_token_file() {
    let fake = Fake::start(vec![Answer::Json(200, "[]".into())]);
    let dir = temp_dir("config");
    std::fs::write(dir.join("admin.token"), "from-config\n").unwrap();
    let config = dir.join("wsgate.yaml");
    let yaml = format!(
        "admin:\n  bind: \"{}\"\n  token_file: admin.token\n",
        fake.addr
    );
    std::fs::write(&config, yaml).unwrap();
    let (code, stdout, stderr) = run(&["tunnels", "--config", config.to_str().unwrap()]);
    assert_eq!((code, stdout.as_str()), (0, "no tunnels\n"), "{stderr}");
    assert_eq!(
        fake.request().header("authorization"),
        Some("Bearer from-config")
    );

    std::fs::write(&config, "listeners: []\n").unwrap();
    let (code, _, stderr) = run(&["--config", config.to_str().unwrap(), "tunnels"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no admin.bind"), "{stderr}");
}

#[test]
fn tap_prints_each_frame_as_it_streams_and_stops_at_the_end_line() {
    let (open, gate) = channel();
    let frame = r#"{"direction":"client","opcode":"text","fin":true,"rsv1":false,"rsv2":false,"rsv3":false,"masked":true,"length":5,"time":"2026-12-02T19:05:06.001Z","payload":"hello"}"#;
    let fake = Fake::start(vec![Answer::Tap {
        first: vec![frame.into()],
        gate,
        rest: vec![r#"{"dropped": 12}"#.into(), r#"{"end":"closed"}"#.into()],
    }]);
    let mut child = Command::new(BIN)
        .args([
            "tunnels",
            "--admin",
            &fake.admin(),
            "tap",
            "17",
            "--limit",
            "3",
            "--payload",
            "16",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (line_tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = line_tx.send(line);
        }
    });
    let next = || lines.recv_timeout(WAIT).expect("a tap line");
    assert_eq!(fake.request().target, "/tunnels/17/tap?limit=3&payload=16");
    // Printed while the rest of the stream is still held back by the gate.
    assert_eq!(next(), r#"19:05:06.001 client -> text fin len=5 "hello""#);
    open.send(()).unwrap();
    assert_eq!(next(), "dropped 12 lines");
    assert_eq!(next(), "end: the tunnel closed");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the tap did not exit after its end line");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}
