//! Active health checks: `GET path` on every endpoint each interval over a fresh connection made as
//! tunnels make theirs (TLS with the upstream's settings when it has `tls:`); a 2xx or 3xx final
//! status within the timeout marks it up, anything else down. Heads are parsed by the protocol
//! core's `head::parse_response`.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use wsgate_proto::head::{parse_response, HeadError, HeadLimits};

use super::dial::{Dialer, UpstreamStream};
use super::endpoint::Endpoint;
use super::ConnectError;
use crate::config::HealthCheck;

/// The most of a response head a probe reads; a backend's health answer is a few hundred bytes.
pub const MAX_HEAD: usize = 8 * 1024;
/// Header lines a probe accepts in one head.
const MAX_HEADERS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("connection closed before the response head ended")]
    Closed,
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error("status {0}")]
    Status(u16),
}

/// Runs until the task is aborted (when its upstream is dropped).
pub async fn run(
    upstream: String,
    endpoints: Vec<Arc<Endpoint>>,
    dialer: Arc<Dialer>,
    check: HealthCheck,
) {
    let mut tick = tokio::time::interval(check.interval);
    loop {
        tick.tick().await;
        for endpoint in &endpoints {
            let verdict = probe(&dialer, &endpoint.addr, &check).await;
            let changed = endpoint.set_checked(verdict.is_ok());
            match verdict {
                Ok(status) if changed => {
                    tracing::info!(%upstream, endpoint = %endpoint.addr, status, "health check passed");
                }
                Err(error) if changed => {
                    tracing::warn!(%upstream, endpoint = %endpoint.addr, %error, "health check failed");
                }
                Err(error) => {
                    tracing::debug!(%upstream, endpoint = %endpoint.addr, %error, "health check failed");
                }
                Ok(_) => {}
            }
        }
    }
}

/// One probe: the final status when it is 2xx or 3xx.
pub async fn probe(dialer: &Dialer, addr: &str, check: &HealthCheck) -> Result<u16, ProbeError> {
    let attempt = async {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: wsgate-health\r\n\r\n",
            check.path,
            dialer.host(addr)
        );
        // Connect and handshake count against the check's timeout, not connect_timeout.
        let status = match dialer.connect(addr, check.timeout).await? {
            UpstreamStream::Tcp(io) => exchange(io, request.as_bytes()).await?,
            UpstreamStream::Tls(io) => exchange(io, request.as_bytes()).await?,
        };
        match status {
            200..=399 => Ok(status),
            other => Err(ProbeError::Status(other)),
        }
    };
    tokio::time::timeout(check.timeout, attempt)
        .await
        .unwrap_or(Err(ProbeError::Timeout(check.timeout)))
}

/// Sends `request` and reads until the final response head is whole, at most `MAX_HEAD` bytes.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    request: &[u8],
) -> Result<u16, ProbeError> {
    io.write_all(request).await?;
    io.flush().await?;
    let mut buf = vec![0u8; MAX_HEAD];
    let mut filled = 0;
    loop {
        if let Some(status) = parse_head(&buf[..filled])? {
            return Ok(status);
        }
        if filled == buf.len() {
            return Err(HeadError::TooLarge { limit: MAX_HEAD }.into());
        }
        let n = io.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Err(ProbeError::Closed);
        }
        filled += n;
    }
}

/// The final status in `bytes`, the start of a response: `Ok(None)` while the head is incomplete
/// (and shorter than `MAX_HEAD`). Interim 1xx heads before it are skipped (RFC 9110 §15.2) and count
/// against the same `MAX_HEAD`; 101 is final, and a failure, since a probe asks for no upgrade.
pub fn parse_head(mut bytes: &[u8]) -> Result<Option<u16>, HeadError> {
    let mut budget = MAX_HEAD;
    loop {
        let limits = HeadLimits {
            max_head_bytes: budget,
            max_headers: MAX_HEADERS,
        };
        let Some(head) = parse_response(bytes, limits).map_err(total_limit)? else {
            return Ok(None);
        };
        if !head.is_interim() {
            return Ok(Some(head.status.as_u16()));
        }
        bytes = &bytes[head.len..];
        budget -= head.len;
    }
}

/// A later head's bound is what the earlier ones left of `MAX_HEAD`: report the whole bound.
fn total_limit(error: HeadError) -> HeadError {
    match error {
        HeadError::TooLarge { .. } => HeadError::TooLarge { limit: MAX_HEAD },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    #[test]
    fn final_status_of_complete_heads() {
        assert_eq!(parse_head(OK), Ok(Some(200)));
        assert_eq!(
            parse_head(b"HTTP/1.1 500 Internal Server Error\r\n\r\n"),
            Ok(Some(500))
        );
        assert_eq!(
            parse_head(b"HTTP/1.0 302 Found\r\nLocation: /\r\n\r\n"),
            Ok(Some(302))
        );
        // Interim heads are skipped; 101 is final.
        assert_eq!(
            parse_head(
                b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
            ),
            Ok(Some(204))
        );
        assert_eq!(
            parse_head(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
            Ok(Some(101))
        );
    }

    #[test]
    fn every_prefix_is_incomplete_until_the_head_ends() {
        let head_len = OK.len() - 2;
        for end in 0..head_len {
            assert_eq!(parse_head(&OK[..end]), Ok(None), "prefix of {end} bytes");
        }
        for end in head_len..=OK.len() {
            assert_eq!(
                parse_head(&OK[..end]),
                Ok(Some(200)),
                "prefix of {end} bytes"
            );
        }
        let interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2";
        assert_eq!(parse_head(interim), Ok(None));
    }

    #[test]
    fn garbage_is_malformed() {
        for bytes in [
            &b"SSH-2.0-OpenSSH_9.6\r\n\r\n"[..],
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
            b"\x16\x03\x01\x00\xa5\x01\x00\x00",
        ] {
            assert!(
                matches!(parse_head(bytes), Err(HeadError::Malformed(_))),
                "{:?}: {:?}",
                String::from_utf8_lossy(bytes),
                parse_head(bytes)
            );
        }
        assert_eq!(
            parse_head(b"HTTP/2.0 200 OK\r\n\r\n"),
            Err(HeadError::UnsupportedVersion)
        );
    }

    #[test]
    fn an_over_long_head_is_refused_once_max_head_bytes_are_in() {
        let mut head = b"HTTP/1.1 200 OK\r\nX-Pad: ".to_vec();
        head.resize(MAX_HEAD - 1, b'a');
        assert_eq!(parse_head(&head), Ok(None));
        head.push(b'a');
        let too_long = Err(HeadError::TooLarge { limit: MAX_HEAD });
        assert_eq!(parse_head(&head), too_long);
        // Interim heads count against the same bound.
        let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
        let mut after_interim = [&interim[..], b"HTTP/1.1 200 OK\r\nX-Pad: "].concat();
        after_interim.resize(MAX_HEAD - 1, b'a');
        assert_eq!(parse_head(&after_interim), Ok(None));
        after_interim.push(b'a');
        assert_eq!(parse_head(&after_interim), too_long);
        // More header lines than a probe accepts.
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_head(&many),
            Err(HeadError::TooManyHeaders { limit: MAX_HEADERS })
        );
    }

    /// A backend on an in-memory pipe of 7 bytes, so the probe's reads come in short pieces.
    async fn exchange_with(reply: Vec<u8>) -> Result<u16, ProbeError> {
        let request = b"GET /h HTTP/1.1\r\nHost: x\r\n\r\n";
        let (probe_side, mut backend) = tokio::io::duplex(7);
        let backend = tokio::spawn(async move {
            let mut got = vec![0u8; request.len()];
            backend.read_exact(&mut got).await.unwrap();
            assert_eq!(got, request);
            // The probe stops reading at its bound: a failed write here is expected then.
            let _ = backend.write_all(&reply).await;
        });
        let result = exchange(probe_side, request).await;
        backend.await.unwrap();
        result
    }

    #[tokio::test]
    async fn exchange_reads_a_split_head_and_stops_at_the_bound() {
        let status = exchange_with(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody".to_vec()).await;
        assert_eq!(status.unwrap(), 200);
        let closed = exchange_with(b"HTTP/1.1 200 OK\r\n".to_vec()).await;
        assert!(matches!(closed, Err(ProbeError::Closed)), "{closed:?}");
        let mut long = b"HTTP/1.1 200 OK\r\nX-Pad: ".to_vec();
        long.resize(MAX_HEAD * 4, b'a');
        let too_long = exchange_with(long).await;
        assert!(
            matches!(
                too_long,
                Err(ProbeError::Head(HeadError::TooLarge { limit: MAX_HEAD }))
            ),
            "{too_long:?}"
        );
    }
}
