//! Idle over HTTP/2: opens S WebSocket streams spread over C connections (each proves its tunnel
//! with one echo), then holds them so the caller can read the proxy's memory. Prints its result
//! line, in the HTTP/1.1 idle mode's shape, as soon as all are open.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::h2ws::{Conn, WsStream, H2};
use crate::ws::Rng;

/// Connections, then streams, being opened at once: quick, and within default listen backlogs.
const OPENING: usize = 128;

/// What `open_all` got: the connections and streams that are up, and how many streams failed.
pub struct Opened {
    pub conns: Vec<Conn>,
    pub streams: Vec<WsStream>,
    pub failed: usize,
}

pub async fn run(
    url: String,
    connections: usize,
    streams: usize,
    hold: Duration,
    target: H2,
) -> Result<String, String> {
    let opened = open_all(&target, connections, streams).await?;
    println!("{}", line(&url, connections, streams, &opened, &target));
    tokio::time::sleep(hold).await;
    drop(opened);
    Ok(String::new())
}

/// Opens `connections` connections, then `streams` streams over them, each with one echo.
pub async fn open_all(target: &H2, connections: usize, streams: usize) -> Result<Opened, String> {
    if connections == 0 || streams < connections {
        return Err(format!(
            "--streams {streams} over --connections {connections}: every connection needs a stream"
        ));
    }
    let gate = Arc::new(Semaphore::new(OPENING));
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let (target, gate) = (target.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.ok()?;
            target
                .connect()
                .await
                .inspect_err(|e| eprintln!("h2 idle connection {c}: {e}"))
                .ok()
        }));
    }
    let mut conns = Vec::with_capacity(connections);
    for task in tasks {
        if let Ok(Some(conn)) = task.await {
            conns.push(conn);
        }
    }
    // The streams of a connection that failed fail with it: they are counted, not moved elsewhere.
    let mut tasks = Vec::with_capacity(streams);
    let mut failed = 0;
    for i in 0..streams {
        let Some(conn) = conns.get(i % connections).cloned() else {
            failed += 1;
            continue;
        };
        let (target, gate) = (target.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.ok()?;
            let mut rng = Rng::new(i as u64 + 1);
            let opened = match target.open(&conn).await {
                Ok(mut ws) => ws.echo_once(&mut rng).await.map(|()| ws),
                Err(e) => Err(e),
            };
            opened
                .inspect_err(|e| eprintln!("h2 idle stream {i}: {e}"))
                .ok()
        }));
    }
    let mut open = Vec::with_capacity(streams);
    for task in tasks {
        match task.await {
            Ok(Some(ws)) => open.push(ws),
            _ => failed += 1,
        }
    }
    Ok(Opened {
        conns,
        streams: open,
        failed,
    })
}

/// The JSON line: the idle mode's fields (`requested`, `open`, `failed` count streams, each one
/// WebSocket), plus `protocol`, `connections` and `connections_open`.
pub fn line(url: &str, connections: usize, streams: usize, opened: &Opened, target: &H2) -> String {
    format!(
        r#"{{"mode":"idle","protocol":"h2","url":"{}","connections":{},"connections_open":{},"requested":{},"open":{},"failed":{}{}}}"#,
        url,
        connections,
        opened.conns.len(),
        streams,
        opened.streams.len(),
        opened.failed,
        target.json_fields()
    )
}
