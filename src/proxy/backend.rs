//! The backend leg of an upgrade, by hand on the protocol core: write the request head on a fresh
//! connection, read the response head, and hand back either the connection (a 101, with any bytes
//! read past its head) or the response with its body framed as the head says. The connection serves
//! this one exchange only: it becomes the tunnel, or it ends with the body.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, StatusCode};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use wsgate_proto::head::{
    parse_response, BodyKind, ChunkError, ChunkedDecoder, HeadError, HeadLimits, ResponseHead,
};

/// A backend's response head may take this much (nginx's `proxy_buffer_size` is 4-8 KiB; cookies
/// grow): more is a 502.
const LIMITS: HeadLimits = HeadLimits {
    max_head_bytes: 64 * 1024,
    max_headers: 100,
};

/// Interim responses (100, 103) skipped before the final one; more is a broken backend.
const MAX_INTERIM: usize = 8;

/// The first read's room: a 101 head is a few hundred bytes.
const HEAD_BUFFER: usize = 4 * 1024;

/// Read size while relaying a body.
const BODY_CHUNK: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LegError {
    #[error("sending the request failed: {0}")]
    Write(#[source] io::Error),
    #[error("reading the response failed: {0}")]
    Read(#[source] io::Error),
    #[error("the connection closed before a response head")]
    Closed,
    #[error("bad response head: {0}")]
    Head(#[source] HeadError),
    #[error("more than {MAX_INTERIM} interim responses")]
    TooManyInterim,
}

/// What the backend answered.
pub enum Answer<S> {
    /// A 101: the connection and whatever it sent past the head (the first frames, possibly).
    Switched {
        head: ResponseHead,
        io: S,
        rest: Bytes,
    },
    /// Any other final status, with its body still to read from the connection.
    Response {
        head: ResponseHead,
        body: BackendBody<S>,
    },
}

/// Writes `request` (a whole head, no body) and reads up to the final response head.
pub async fn exchange<S>(mut io: S, request: &[u8]) -> Result<Answer<S>, LegError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    io.write_all(request).await.map_err(LegError::Write)?;
    io.flush().await.map_err(LegError::Write)?;
    let mut buf = BytesMut::with_capacity(HEAD_BUFFER);
    let mut interim = 0;
    loop {
        let parsed = match buf.is_empty() {
            true => None,
            false => parse_response(&buf, LIMITS).map_err(LegError::Head)?,
        };
        if let Some(head) = parsed {
            buf.advance(head.len);
            if head.is_interim() {
                interim += 1;
                if interim > MAX_INTERIM {
                    return Err(LegError::TooManyInterim);
                }
                continue;
            }
            if head.status == StatusCode::SWITCHING_PROTOCOLS {
                return Ok(Answer::Switched {
                    head,
                    io,
                    rest: buf.freeze(),
                });
            }
            let kind = head.body(&Method::GET).map_err(LegError::Head)?;
            let body = BackendBody::new(io, buf, kind);
            return Ok(Answer::Response { head, body });
        }
        if buf.capacity() == buf.len() {
            buf.reserve(HEAD_BUFFER);
        }
        let n = io.read_buf(&mut buf).await.map_err(LegError::Read)?;
        if n == 0 {
            return Err(LegError::Closed);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("reading the upstream body failed: {0}")]
    Read(#[source] io::Error),
    #[error("the upstream closed inside its body")]
    Truncated,
    #[error("bad chunked body: {0}")]
    Chunked(#[source] ChunkError),
}

/// How far the body is read.
enum Framing {
    /// This many bytes are left.
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

/// A non-101 answer's body, read from the backend connection as the client takes it (hyper frames
/// it again toward the client: by length, or chunked).
pub struct BackendBody<S> {
    io: S,
    /// Bytes read and not yet given out.
    buf: BytesMut,
    framing: Framing,
}

impl<S> BackendBody<S> {
    fn new(io: S, buf: BytesMut, kind: BodyKind) -> Self {
        let framing = match kind {
            BodyKind::None | BodyKind::Length(0) => Framing::Done,
            BodyKind::Length(n) => Framing::Length(n),
            BodyKind::Chunked => Framing::Chunked(ChunkedDecoder::new()),
            BodyKind::UntilClose => Framing::UntilClose,
        };
        BackendBody { io, buf, framing }
    }

    /// The next piece of payload among the buffered bytes, if any.
    fn next_data(&mut self) -> Result<Option<Bytes>, BodyError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        match &mut self.framing {
            Framing::Done => Ok(None),
            Framing::UntilClose => Ok(Some(self.buf.split().freeze())),
            Framing::Length(left) => {
                let take = (*left).min(self.buf.len() as u64) as usize;
                *left -= take as u64;
                if *left == 0 {
                    self.framing = Framing::Done;
                }
                Ok(Some(self.buf.split_to(take).freeze()))
            }
            Framing::Chunked(decoder) => loop {
                let decoded = decoder.decode(&self.buf).map_err(BodyError::Chunked)?;
                let data = if decoded.data.is_empty() {
                    None
                } else {
                    self.buf.advance(decoded.data.start);
                    let data = self.buf.split_to(decoded.data.len()).freeze();
                    self.buf.advance(decoded.consumed - decoded.data.end);
                    Some(data)
                };
                if data.is_none() {
                    self.buf.advance(decoded.consumed);
                }
                if decoded.done {
                    self.framing = Framing::Done;
                    return Ok(data);
                }
                if data.is_some() || decoded.consumed == 0 || self.buf.is_empty() {
                    return Ok(data);
                }
            },
        }
    }
}

impl<S: AsyncRead + Unpin> http_body::Body for BackendBody<S> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            match this.next_data() {
                Ok(Some(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(None) if matches!(this.framing, Framing::Done) => return Poll::Ready(None),
                Ok(None) => {}
                Err(e) => {
                    this.framing = Framing::Done;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            let read = ready!(poll_read_more(&mut this.io, cx, &mut this.buf));
            match read {
                Ok(0) => {
                    let end = match this.framing {
                        Framing::UntilClose => None,
                        _ => Some(Err(BodyError::Truncated)),
                    };
                    this.framing = Framing::Done;
                    return Poll::Ready(end);
                }
                Ok(_) => {}
                Err(e) => {
                    this.framing = Framing::Done;
                    return Poll::Ready(Some(Err(BodyError::Read(e))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.framing, Framing::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(n) => SizeHint::with_exact(n),
            Framing::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// Reads what is there onto the end of `buf` (zeroed room first: the body path is the rare one).
fn poll_read_more<S: AsyncRead + Unpin>(
    io: &mut S,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    let start = buf.len();
    buf.resize(start + BODY_CHUNK, 0);
    let mut room = ReadBuf::new(&mut buf[start..]);
    let read = Pin::new(io).poll_read(cx, &mut room);
    let n = room.filled().len();
    buf.truncate(start + n);
    Poll::Ready(ready!(read).map(|()| n))
}
