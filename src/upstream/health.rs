//! Active health checks: `GET path` on every endpoint each interval over a fresh connection; a 2xx or
//! 3xx status within the timeout marks it up, anything else down.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::endpoint::Endpoint;
use crate::config::HealthCheck;

/// Runs until the task is aborted (when its upstream is dropped).
pub async fn run(endpoints: Vec<Arc<Endpoint>>, check: HealthCheck) {
    let mut tick = tokio::time::interval(check.interval);
    loop {
        tick.tick().await;
        for endpoint in &endpoints {
            let healthy = probe(&endpoint.addr, &check.path, check.timeout).await;
            endpoint.set_checked(healthy);
        }
    }
}

async fn probe(addr: &str, path: &str, timeout: Duration) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: wsgate-health\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        // "HTTP/1.1 200"
        let status = std::str::from_utf8(&head[9..12])
            .ok()?
            .parse::<u16>()
            .ok()?;
        Some((200..400).contains(&status))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
