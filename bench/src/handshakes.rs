//! Handshake rate: C workers each loop connect, handshake, one echo, close handshake; counts the
//! WebSocket sessions completed per second. Over wss:// each session is a new TLS connection with a
//! full handshake (the client never resumes).

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
    target: C,
) -> Result<String, String> {
    let parsed = ws::parse_url(&url)?;
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (start, cpu) = (Instant::now(), crate::cpu::seconds());
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (target, parsed) = (target.clone(), parsed.clone());
        let (done, errors, stop) = (done.clone(), errors.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = Rng::new(w as u64 + 1);
            while !stop.load(Ordering::Relaxed) {
                match session(&target, &parsed, &mut rng).await {
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
    rng: &mut Rng,
) -> io::Result<()> {
    let stream = target.connect().await?;
    let (mut stream, prefix) = ws::connect(stream, &url.authority, &url.path, rng).await?;
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
