//! HTTP/2 with prior knowledge on a plain listener (RFC 9113 §3.3): a connection whose first bytes
//! are the client preface speaks HTTP/2; any other is HTTP/1.1. Peeked, not read, so the chosen
//! server reads the bytes itself.

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;

use super::http::Version;

/// RFC 9113 §3.4.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The pause between peeks at a preface that has not all arrived.
const RETRY: Duration = Duration::from_millis(5);

/// Which HTTP the connection speaks, once its first bytes tell (at most `timeout` after accept).
pub(super) async fn sniff(stream: &TcpStream, timeout: Duration) -> io::Result<Version> {
    tokio::time::timeout(timeout, decide(stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request in time"))?
}

async fn decide(stream: &TcpStream) -> io::Result<Version> {
    let mut buf = [0u8; PREFACE.len()];
    let mut seen = 0;
    // Each pass sees more bytes or the end: bounded by the preface's length and the timeout.
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        match classify(&buf[..n]) {
            Some(version) => return Ok(version),
            None if n == seen => {
                // Nothing new: a peek leaves the socket readable, so waiting for readiness would
                // return at once; a short pause instead (a preface split across packets is rare).
                tokio::time::sleep(RETRY).await;
            }
            None => seen = n,
        }
    }
}

/// `None` while the bytes so far are a prefix of the preface.
fn classify(bytes: &[u8]) -> Option<Version> {
    if !PREFACE.starts_with(bytes) {
        Some(Version::Http1)
    } else if bytes.len() == PREFACE.len() {
        Some(Version::Http2)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preface_and_nothing_else_is_http2() {
        assert_eq!(classify(PREFACE), Some(Version::Http2));
        assert_eq!(classify(b"PRI * HTTP/2.0\r\n"), None);
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Some(Version::Http1));
        assert_eq!(classify(b"P"), None);
        assert_eq!(classify(b"POST"), Some(Version::Http1));
    }
}
