//! Handshake rate: C workers each loop connect, handshake, one echo, close handshake; counts the
//! WebSocket sessions completed per second.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::ws::{self, put_client_frame, Reader, Rng};

pub async fn run(url: String, concurrency: usize, duration: Duration) -> Result<String, String> {
    let (authority, path) = ws::parse_url(&url)?;
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (authority, path) = (authority.clone(), path.clone());
        let (done, errors, stop) = (done.clone(), errors.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = Rng::new(w as u64 + 1);
            while !stop.load(Ordering::Relaxed) {
                match session(&authority, &path, &mut rng).await {
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
    for worker in workers {
        let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
    }
    Ok(format!(
        r#"{{"mode":"handshakes","url":"{}","concurrency":{},"seconds":{:.2},"sessions":{},"per_s":{:.0},"errors":{}}}"#,
        url,
        concurrency,
        secs,
        sessions,
        sessions as f64 / secs,
        errors.load(Ordering::Relaxed)
    ))
}

async fn session(authority: &str, path: &str, rng: &mut Rng) -> io::Result<()> {
    let (mut stream, prefix) = ws::connect(authority, path, rng).await?;
    let mut out = Vec::new();
    put_client_frame(&mut out, ws::OP_BINARY, b"hi", rng);
    put_client_frame(&mut out, ws::OP_CLOSE, &1000u16.to_be_bytes(), rng);
    stream.write_all(&out).await?;
    let mut reader = Reader::new(Vec::new());
    let mut echoed = reader.feed(&prefix);
    let mut buf = [0u8; 256];
    // The echo, then the close reply, then the server's FIN.
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        echoed += reader.feed(&buf[..n]);
    }
    if echoed == 1 && reader.closed {
        Ok(())
    } else {
        Err(io::Error::other("session ended without echo and close"))
    }
}
