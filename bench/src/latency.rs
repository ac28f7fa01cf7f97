//! Ping-pong latency over one connection: one message in flight, round trips in an HDR histogram.
//! With `rate`, messages are due on a fixed schedule and each round trip is measured from when its
//! message was due, not when it was sent, so a stall counts for every message it delayed
//! (coordinated-omission correction).

use std::io;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::stream::Connect;
use crate::ws::{self, put_client_frame, Reader, Rng};

pub struct Params {
    pub url: String,
    pub size: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Messages per second; `None`: back to back.
    pub rate: Option<u32>,
}

pub async fn run<C: Connect>(p: Params, target: C) -> Result<String, String> {
    let url = ws::parse_url(&p.url)?;
    let hist = measure(&target, &url, &p)
        .await
        .map_err(|e| e.to_string())?;
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(format!(
        r#"{{"mode":"latency","url":"{}","size":{},"rate":{},"samples":{},"p50_us":{:.1},"p99_us":{:.1},"p999_us":{:.1},"max_us":{:.1}{}}}"#,
        p.url,
        p.size,
        p.rate.map_or("null".to_string(), |r| r.to_string()),
        hist.len(),
        us(0.50),
        us(0.99),
        us(0.999),
        hist.max() as f64 / 1000.0,
        target.json_fields()
    ))
}

async fn measure<C: Connect>(target: &C, url: &ws::Url, p: &Params) -> io::Result<Histogram<u64>> {
    let mut rng = Rng::new(7);
    let stream = target.connect().await?;
    let (mut stream, prefix) = ws::connect(stream, url, &mut rng).await?;
    let mut reader = Reader::new(Vec::new());
    if reader.feed(&prefix) > 0 {
        return Err(io::Error::other("a message before the first request"));
    }
    let payload = vec![b'x'; p.size];
    let mut out = Vec::with_capacity(p.size + 14);
    let mut buf = vec![0u8; 64 * 1024];
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(io::Error::other)?;
    let interval = p
        .rate
        .map(|r| Duration::from_secs_f64(1.0 / f64::from(r.max(1))));
    let start = Instant::now();
    let measure_from = start + p.warmup;
    let end = measure_from + p.duration;
    let mut i: u32 = 0;
    loop {
        let due = match interval {
            Some(interval) => {
                let due = start + interval * i;
                wait_until(due).await;
                due
            }
            None => Instant::now(),
        };
        if due >= end {
            break;
        }
        i += 1;
        out.clear();
        put_client_frame(&mut out, ws::OP_BINARY, &payload, &mut rng);
        stream.write_all(&out).await?;
        stream.flush().await?;
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if reader.feed(&buf[..n]) > 0 {
                break;
            }
        }
        if due >= measure_from {
            let _ = hist.record(due.elapsed().as_nanos().max(1) as u64);
        }
    }
    Ok(hist)
}

/// Tokio's timer ticks in whole milliseconds, too coarse for a schedule of 2,000 messages a second:
/// sleep until just before `due`, then yield until it comes.
async fn wait_until(due: Instant) {
    let coarse = Duration::from_micros(1_500);
    if let Some(early) = due.checked_sub(coarse) {
        if early > Instant::now() {
            tokio::time::sleep_until(early.into()).await;
        }
    }
    while Instant::now() < due {
        std::thread::yield_now();
    }
}
