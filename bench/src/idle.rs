//! Idle: opens N connections (each proves its tunnel with one echo), then holds them open so the
//! caller can read the proxy's memory. Prints its result line as soon as all are open.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::stream::Connect;
use crate::ws::{self, put_client_frame, Reader, Rng};

/// Handshakes in progress at once: enough to be quick, few enough for default listen backlogs.
const OPENING: usize = 128;

pub async fn run<C: Connect>(
    url: String,
    connections: usize,
    hold: Duration,
    target: C,
) -> Result<String, String> {
    let parsed = ws::parse_url(&url)?;
    let gate = Arc::new(Semaphore::new(OPENING));
    let mut tasks = Vec::with_capacity(connections);
    for i in 0..connections {
        let (target, parsed, gate) = (target.clone(), parsed.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.ok()?;
            match open(&target, &parsed, i as u64).await {
                Ok(stream) => Some(stream),
                Err(e) => {
                    eprintln!("idle connection {i}: {e}");
                    None
                }
            }
        }));
    }
    let mut open_streams = Vec::with_capacity(connections);
    for task in tasks {
        if let Ok(Some(stream)) = task.await {
            open_streams.push(stream);
        }
    }
    println!(
        r#"{{"mode":"idle","url":"{}","requested":{},"open":{},"failed":{}{}}}"#,
        url,
        connections,
        open_streams.len(),
        connections - open_streams.len(),
        target.json_fields()
    );
    tokio::time::sleep(hold).await;
    drop(open_streams);
    Ok(String::new())
}

async fn open<C: Connect>(target: &C, url: &ws::Url, seed: u64) -> io::Result<C::Stream> {
    let mut rng = Rng::new(seed + 1);
    let stream = target.connect().await?;
    let (mut stream, prefix) = ws::connect(stream, url, &mut rng).await?;
    let mut out = Vec::new();
    put_client_frame(&mut out, ws::OP_BINARY, b"hello", &mut rng);
    stream.write_all(&out).await?;
    stream.flush().await?;
    let mut reader = Reader::new(Vec::new());
    let mut got = reader.feed(&prefix);
    let mut buf = [0u8; 256];
    while got == 0 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got = reader.feed(&buf[..n]);
    }
    Ok(stream)
}
