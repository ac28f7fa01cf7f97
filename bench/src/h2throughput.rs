//! Throughput over HTTP/2: S WebSocket streams spread over C connections (stream i on connection
//! i mod C), each keeping K messages of B bytes in flight and answering every echo with a new
//! message, as the HTTP/1.1 throughput mode does per connection. One task per stream and one per
//! connection (h2's frame driver), no locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::h2ws::{H2Error, WsStream, H2};
use crate::throughput::{measure, Window};
use crate::ws::{self, put_client_frame, Reader, Rng};

pub struct Params {
    pub url: String,
    pub connections: usize,
    pub streams: usize,
    pub size: usize,
    pub inflight: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub text: bool,
}

pub async fn run(p: Params, target: H2) -> Result<String, String> {
    if p.connections == 0 || p.streams < p.connections {
        return Err(format!(
            "--streams {} over --connections {}: every connection needs a stream",
            p.streams, p.connections
        ));
    }
    let received = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    for c in 0..p.connections {
        let (target, received, errors) = (target.clone(), received.clone(), errors.clone());
        let streams: Vec<usize> = (c..p.streams).step_by(p.connections).collect();
        let shape = Shape {
            size: p.size,
            inflight: p.inflight,
            opcode: if p.text { ws::OP_TEXT } else { ws::OP_BINARY },
        };
        tokio::spawn(async move {
            let conn = match target.connect().await {
                Ok(conn) => conn,
                Err(e) => {
                    errors.fetch_add(streams.len() as u64, Ordering::Relaxed);
                    eprintln!("h2 throughput connection {c}: {e}");
                    return;
                }
            };
            for i in streams {
                let (target, conn) = (target.clone(), conn.clone());
                let (received, errors) = (received.clone(), errors.clone());
                tokio::spawn(async move {
                    let result = match target.open(&conn).await {
                        Ok(ws) => echo_loop(ws, i as u64, shape, &received).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = result {
                        errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("h2 throughput stream {i}: {e}");
                    }
                });
            }
        });
    }
    let Window {
        messages,
        secs,
        rate,
        tool_cpu,
    } = measure(&received, p.warmup, p.duration).await;
    // The HTTP/1.1 mode's fields, plus `protocol` and `streams`: one stream is one WebSocket here.
    Ok(format!(
        r#"{{"mode":"throughput","protocol":"h2","url":"{}","connections":{},"streams":{},"size":{},"inflight":{},"seconds":{:.2},"messages":{},"msgs_per_s":{:.0},"mb_per_s":{:.2},"errors":{}{}{}}}"#,
        p.url,
        p.connections,
        p.streams,
        p.size,
        p.inflight,
        secs,
        messages,
        rate,
        rate * p.size as f64 / 1e6,
        errors.load(Ordering::Relaxed),
        tool_cpu,
        target.json_fields()
    ))
}

/// What one stream sends: K messages of S bytes in flight, of one opcode.
#[derive(Clone, Copy)]
struct Shape {
    size: usize,
    inflight: usize,
    opcode: u8,
}

/// Keeps `inflight` messages on the stream: every echo counted is answered by one new message, all
/// that one read completed going out as one DATA frame.
async fn echo_loop(
    mut ws: WsStream,
    seed: u64,
    shape: Shape,
    received: &AtomicU64,
) -> Result<(), H2Error> {
    let mut rng = Rng::new(seed + 1);
    let payload = vec![b'x'; shape.size];
    let frames = |n: u64, rng: &mut Rng| {
        let mut out = Vec::with_capacity(n as usize * (shape.size + 14));
        for _ in 0..n {
            put_client_frame(&mut out, shape.opcode, &payload, rng);
        }
        out
    };
    ws.send(frames(shape.inflight as u64, &mut rng))?;
    let mut reader = Reader::new(Vec::new());
    loop {
        let data = ws.recv().await?;
        let echoed = reader.feed(&data);
        if reader.closed {
            return Err(H2Error::Closed);
        }
        if echoed > 0 {
            received.fetch_add(echoed, Ordering::Relaxed);
            ws.send(frames(echoed, &mut rng))?;
        }
    }
}
