//! The PROXY protocol header (v1 or v2) at the start of a connection on a `proxy_protocol` listener:
//! read by awaiting the socket, and no byte past the header is consumed, so that HTTP (or TLS)
//! starts on the client's first byte.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use wsgate_proto::proxy_protocol::{self, ProxyHeaderError};

/// The longest header accepted: HAProxy's spec sizes a receiver's buffer for a v2 header at 536
/// bytes (a v1 line is at most 107).
const MAX_HEADER: usize = 536;

#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    #[error("no PROXY protocol header within handshake_timeout")]
    Timeout,
    #[error("closed before the PROXY protocol header was complete")]
    Closed,
    #[error("PROXY protocol header longer than {MAX_HEADER} bytes")]
    TooLong,
    #[error(transparent)]
    Header(#[from] ProxyHeaderError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The header's client address (`None` for `LOCAL`/`UNKNOWN`), within `timeout`.
pub(super) async fn read(
    stream: &mut TcpStream,
    timeout: Duration,
) -> Result<Option<SocketAddr>, ReadError> {
    tokio::time::timeout(timeout, read_header(stream))
        .await
        .map_err(|_| ReadError::Timeout)?
}

/// Peeks at what has arrived and parses the header's bytes so far with it. While the header is
/// incomplete, every byte peeked belongs to it, so all of them are taken off the socket: the next
/// peek then waits (on readiness, no timer) for bytes that are new. Once the header is complete,
/// exactly its remaining bytes are taken and the rest stays in the socket.
async fn read_header(stream: &mut TcpStream) -> Result<Option<SocketAddr>, ReadError> {
    let mut buf = [0u8; MAX_HEADER];
    // buf[..taken]: header bytes already read off the socket.
    let mut taken = 0;
    loop {
        if taken == MAX_HEADER {
            return Err(ReadError::TooLong);
        }
        let seen = stream.peek(&mut buf[taken..]).await?;
        if seen == 0 {
            return Err(ReadError::Closed);
        }
        let end = match proxy_protocol::parse(&buf[..taken + seen])? {
            Some((header, len)) => {
                take(stream, &mut buf[taken..len.max(taken)]).await?;
                return Ok(header.source);
            }
            None => taken + seen,
        };
        take(stream, &mut buf[taken..end]).await?;
        taken = end;
    }
}

/// Reads bytes that a peek has already shown to be in the socket.
async fn take(stream: &mut TcpStream, into: &mut [u8]) -> Result<(), ReadError> {
    match stream.read_exact(into).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(ReadError::Closed),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    const LONG: Duration = Duration::from_secs(30);

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    /// Waits until `server` holds at least `n` unread bytes (peek does not consume them).
    async fn arrived(server: &TcpStream, n: usize) {
        let mut buf = [0u8; 256];
        while server.peek(&mut buf).await.unwrap() < n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_header_in_pieces_waits_for_the_rest_and_leaves_the_request() {
        let (mut client, mut server) = pair().await;
        let header = b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 80\r\n";
        let request = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        client.write_all(&header[..20]).await.unwrap();
        arrived(&server, 20).await;
        let mut reading = Box::pin(read(&mut server, LONG));
        // Polled once: it takes the 20 bytes and then waits for more instead of failing.
        let first = tokio::time::timeout(Duration::ZERO, &mut reading).await;
        assert!(first.is_err(), "returned early: {first:?}");
        let mut rest = header[20..].to_vec();
        rest.extend_from_slice(request);
        client.write_all(&rest).await.unwrap();
        let source = reading.await.unwrap();
        assert_eq!(source, Some("203.0.113.7:5555".parse().unwrap()));
        let mut after = vec![0u8; request.len()];
        server.read_exact(&mut after).await.unwrap();
        assert_eq!(after, request);
    }

    #[tokio::test]
    async fn a_v2_header_is_read_to_its_length() {
        let (mut client, mut server) = pair().await;
        let mut bytes = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        bytes.extend_from_slice(&[0x21, 0x11, 0x00, 12, 198, 51, 100, 9, 127, 0, 0, 1]);
        bytes.extend_from_slice(&[0x9c, 0x40, 0, 80]);
        bytes.extend_from_slice(b"\x16\x03\x01");
        client.write_all(&bytes).await.unwrap();
        let source = read(&mut server, LONG).await.unwrap();
        assert_eq!(source, Some("198.51.100.9:40000".parse().unwrap()));
        let mut after = [0u8; 3];
        server.read_exact(&mut after).await.unwrap();
        assert_eq!(&after, b"\x16\x03\x01");
    }

    #[tokio::test]
    async fn closed_inside_the_header_and_not_a_header() {
        let (mut client, mut server) = pair().await;
        client.write_all(b"PROXY TCP4 ").await.unwrap();
        client.shutdown().await.unwrap();
        let error = read(&mut server, LONG).await.unwrap_err();
        assert!(matches!(error, ReadError::Closed), "{error}");

        let (mut client, mut server) = pair().await;
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let error = read(&mut server, LONG).await.unwrap_err();
        assert!(
            matches!(error, ReadError::Header(ProxyHeaderError::Missing)),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_v2_header_longer_than_the_buffer() {
        let (mut client, mut server) = pair().await;
        let mut bytes = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        bytes.extend_from_slice(&[0x21, 0x11, 0x03, 0x00]);
        bytes.resize(MAX_HEADER + 10, 0);
        client.write_all(&bytes).await.unwrap();
        let error = read(&mut server, LONG).await.unwrap_err();
        assert!(matches!(error, ReadError::TooLong), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_header_within_the_timeout() {
        let (mut client, mut server) = pair().await;
        client.write_all(b"PROXY ").await.unwrap();
        let error = read(&mut server, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(matches!(error, ReadError::Timeout), "{error}");
    }
}
