//! Handshake rate: C workers each loop connect, handshake, one echo, close handshake; counts the
//! WebSocket sessions completed per second. Over wss:// each session is a new TLS connection with a
//! full handshake (the client never resumes). `headers` go on every upgrade request (a token for a
//! route behind auth); a refused upgrade (401, 403) counts as an error, never as a session.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::stream::Connect;
use crate::ws::{self, put_client_frame, Reader, Rng};

pub async fn run<C: Connect>(
    url: String,
    concurrency: usize,
    duration: Duration,
    headers: ws::Headers,
    target: C,
) -> Result<String, String> {
    let parsed = ws::parse_url(&url)?;
    let headers = Arc::new(headers);
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (start, cpu) = (Instant::now(), crate::cpu::seconds());
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (target, parsed, headers) = (target.clone(), parsed.clone(), headers.clone());
        let (done, errors, stop) = (done.clone(), errors.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = Rng::new(w as u64 + 1);
            while !stop.load(Ordering::Relaxed) {
                match session(&target, &parsed, &headers, &mut rng).await {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let sessions = done.load(Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    let tool_cpu = crate::cpu::json_field(cpu);
    for worker in workers {
        let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
    }
    Ok(format!(
        r#"{{"mode":"handshakes","url":"{}","concurrency":{},"seconds":{:.2},"sessions":{},"per_s":{:.0},"errors":{}{}{}}}"#,
        url,
        concurrency,
        secs,
        sessions,
        sessions as f64 / secs,
        errors.load(Ordering::Relaxed),
        tool_cpu,
        target.json_fields()
    ))
}

pub(crate) async fn session<C: Connect>(
    target: &C,
    url: &ws::Url,
    headers: &ws::Headers,
    rng: &mut Rng,
) -> io::Result<()> {
    let stream = target.connect().await?;
    let (mut stream, prefix) = ws::connect_with(stream, url, headers, rng).await?;
    let mut out = Vec::new();
    put_client_frame(&mut out, ws::OP_BINARY, b"hi", rng);
    put_client_frame(&mut out, ws::OP_CLOSE, &1000u16.to_be_bytes(), rng);
    stream.write_all(&out).await?;
    stream.flush().await?;
    let mut reader = Reader::new(Vec::new());
    let mut echoed = reader.feed(&prefix);
    let mut buf = [0u8; 256];
    // The echo, then the close reply, then the server's FIN.
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => echoed += reader.feed(&buf[..n]),
            // A TLS peer may close the TCP connection without close_notify once the WebSocket is
            // closed; by then the session is complete.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && reader.closed => break,
            Err(e) => return Err(e),
        }
    }
    if echoed == 1 && reader.closed {
        Ok(())
    } else {
        Err(io::Error::other("session ended without echo and close"))
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::stream::Plain;

    /// A gate in front of an echo backend, as a proxy with auth is: an upgrade without
    /// `Authorization: Bearer good` gets a 401; one with it goes to the backend, head and all.
    async fn gated_echo() -> ws::Url {
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend_addr = backend.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = backend.accept().await {
                tokio::spawn(crate::echo::echo(tcp));
            }
        });
        let gate = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = gate.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = gate.accept().await {
                tokio::spawn(async move {
                    let (head, rest) = ws::read_head(&mut client).await.unwrap();
                    let allowed = String::from_utf8_lossy(&head)
                        .lines()
                        .any(|l| l == "Authorization: Bearer good");
                    if !allowed {
                        let _ = client
                            .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
                            .await;
                        return;
                    }
                    let mut upstream = TcpStream::connect(backend_addr).await.unwrap();
                    upstream.write_all(&head).await.unwrap();
                    upstream.write_all(&rest).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });
        ws::parse_url(&format!("ws://127.0.0.1:{port}/")).unwrap()
    }

    fn headers(lines: &[&str]) -> ws::Headers {
        ws::Headers::parse(&lines.iter().map(|l| l.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[tokio::test]
    async fn the_header_goes_on_the_upgrade_request() {
        let url = gated_echo().await;
        let target = Plain::new(&url).await.unwrap();
        let mut rng = Rng::new(1);
        let good = headers(&["X-Other: 1", "Authorization: Bearer good"]);
        for _ in 0..3 {
            session(&target, &url, &good, &mut rng).await.unwrap();
        }
        let refused = session(&target, &url, &ws::Headers::default(), &mut rng).await;
        assert!(refused.unwrap_err().to_string().contains("401"));
    }

    /// A proxy that refuses every upgrade must not look fast: no sessions, every attempt an error.
    #[tokio::test]
    async fn refused_upgrades_count_as_errors_not_sessions() {
        let url = gated_echo().await;
        let target = Plain::new(&url).await.unwrap();
        let line = run(
            format!("ws://{}/", url.authority),
            2,
            Duration::from_millis(200),
            headers(&["Authorization: Bearer bad"]),
            target,
        )
        .await
        .unwrap();
        assert!(line.contains(r#""sessions":0,"#), "{line}");
        assert!(!line.contains(r#""errors":0,"#), "{line}");
    }
}
