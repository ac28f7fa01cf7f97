//! Trickle: one WebSocket that sends a message every `interval` and reads its echo before the next
//! (interval 0: a flood, `inflight` messages kept in flight), until SIGTERM, SIGINT or `duration`.
//! The bench runs it beside a throughput measurement, as the tunnel a tap is attached to: it prints
//! an "open" line with its local address as soon as the handshake is done (the bench finds the
//! tunnel's id on the admin API by that client address), then its counts when it stops.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::signal::unix::{signal, SignalKind};

use crate::stream::{Connect, Plain, Stream};
use crate::ws::{self, put_client_frame, Reader, Rng};

pub struct Params {
    pub url: String,
    pub size: usize,
    /// Between messages; zero: back to back, `inflight` at a time.
    pub interval: Duration,
    pub inflight: usize,
    pub duration: Duration,
}

#[derive(Default)]
struct Counts {
    sent: u64,
    echoed: u64,
}

pub async fn run(p: Params) -> Result<String, String> {
    let url = ws::parse_url(&p.url)?;
    if url.tls {
        return Err(format!("{}: trickle speaks ws:// only", p.url));
    }
    if p.inflight == 0 {
        return Err("--inflight: at least 1".into());
    }
    // Installed before the open line: a signal sent as soon as the bench reads it is not lost.
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(e), _) | (_, Err(e)) => return Err(format!("signal handlers: {e}")),
    };
    let err = |e: io::Error| e.to_string();
    let stream = Plain::new(&url).await?.connect().await.map_err(err)?;
    let local: SocketAddr = stream.local_addr().map_err(err)?;
    let mut rng = Rng::new(11);
    let (mut stream, prefix) = ws::connect(stream, &url, &mut rng).await.map_err(err)?;
    println!(r#"{{"mode":"trickle","event":"open","local":"{local}"}}"#);
    let start = Instant::now();
    let mut counts = Counts::default();
    let ended = tokio::select! {
        r = pump(&mut stream, &p, prefix, &mut rng, &mut counts) => r.map_err(err)?,
        _ = term.recv() => "signal",
        _ = int.recv() => "signal",
        () = tokio::time::sleep(p.duration) => "duration",
    };
    let secs = start.elapsed().as_secs_f64();
    Ok(format!(
        r#"{{"mode":"trickle","url":"{}","local":"{}","size":{},"interval_ms":{},"inflight":{},"seconds":{:.2},"sent":{},"echoed":{},"msgs_per_s":{:.0},"ended":"{}"}}"#,
        p.url,
        local,
        p.size,
        p.interval.as_millis(),
        p.inflight,
        secs,
        counts.sent,
        counts.echoed,
        counts.echoed as f64 / secs,
        ended
    ))
}

/// Sends and reads until the stream fails or the server closes it (then "closed").
async fn pump(
    stream: &mut TcpStream,
    p: &Params,
    prefix: Vec<u8>,
    rng: &mut Rng,
    counts: &mut Counts,
) -> io::Result<&'static str> {
    let payload = vec![b'x'; p.size];
    let mut reader = Reader::new(Vec::new());
    counts.echoed += reader.feed(&prefix);
    if p.interval.is_zero() {
        return flood(stream, p.inflight, &payload, reader, rng, counts).await;
    }
    let mut tick = tokio::time::interval(p.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut out = Vec::with_capacity(p.size + 14);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tick.tick().await;
        out.clear();
        put_client_frame(&mut out, ws::OP_BINARY, &payload, rng);
        stream.write_all(&out).await?;
        counts.sent += 1;
        while counts.echoed < counts.sent {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            counts.echoed += reader.feed(&buf[..n]);
            if reader.closed {
                return Ok("closed");
            }
        }
    }
}

/// `inflight` messages in flight, each echo answered by a new one (the throughput mode's loop).
async fn flood(
    stream: &mut TcpStream,
    inflight: usize,
    payload: &[u8],
    mut reader: Reader,
    rng: &mut Rng,
    counts: &mut Counts,
) -> io::Result<&'static str> {
    let mut out = Vec::with_capacity(inflight * (payload.len() + 14));
    let mut due = inflight as u64;
    let mut written = 0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        for _ in 0..due {
            put_client_frame(&mut out, ws::OP_BINARY, payload, rng);
        }
        counts.sent += due;
        let progress = stream.exchange(&out[written..], &mut buf).await?;
        written += progress.wrote;
        if written == out.len() {
            out.clear();
            written = 0;
        }
        due = 0;
        if let Some(n) = progress.read {
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            due = reader.feed(&buf[..n]);
            counts.echoed += due;
            if reader.closed {
                return Ok("closed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// The echo backend on a free port: its ws:// URL.
    async fn echo_url() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(crate::echo::echo(stream));
            }
        });
        format!("ws://{addr}/")
    }

    fn params(url: String, interval: Duration) -> Params {
        Params {
            url,
            size: 16,
            interval,
            inflight: 4,
            duration: Duration::from_millis(200),
        }
    }

    fn field(line: &str, name: &str) -> u64 {
        let at = line.find(&format!("\"{name}\":")).unwrap() + name.len() + 3;
        let digits: String = line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    }

    #[tokio::test]
    async fn a_trickle_reads_every_echo_before_the_next_message() {
        let line = run(params(echo_url().await, Duration::from_millis(5)))
            .await
            .unwrap();
        assert!(line.contains(r#""ended":"duration""#), "{line}");
        let (sent, echoed) = (field(&line, "sent"), field(&line, "echoed"));
        assert!(sent > 0 && (sent - echoed) <= 1, "{line}");
    }

    #[tokio::test]
    async fn a_flood_keeps_its_messages_in_flight() {
        let line = run(params(echo_url().await, Duration::ZERO)).await.unwrap();
        let (sent, echoed) = (field(&line, "sent"), field(&line, "echoed"));
        assert!(echoed > 0 && sent - echoed <= 4, "{line}");
    }

    #[tokio::test]
    async fn wss_and_no_inflight_are_refused() {
        let mut p = params("wss://localhost:1/".into(), Duration::ZERO);
        assert!(run(p).await.unwrap_err().contains("ws:// only"));
        p = params("ws://127.0.0.1:1/".into(), Duration::ZERO);
        p.inflight = 0;
        assert!(run(p).await.unwrap_err().contains("--inflight"));
    }
}
