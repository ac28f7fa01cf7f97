//! HTTP/1.1 heads on the backend leg of an upgrade (RFC 9112), as plain functions over bytes: the
//! request head wsgate writes (`request.rs`), the response head it reads and how that response's body
//! is delimited (`response.rs`), and a streaming decoder for chunked bodies (`chunked.rs`). The
//! errors they share are here. No I/O: the caller owns the socket and the buffer.

mod chunked;
mod request;
mod response;

pub use chunked::{ChunkedDecoder, Decoded};
pub use request::RequestHead;
pub use response::{parse_response, BodyKind, HeadLimits, ResponseHead};

/// Why a head (or its framing headers) is refused. Every variant is the backend's fault except
/// `BadTarget`, which is the caller's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The bytes are not an HTTP/1.x response head; httparse says where it stopped.
    #[error("malformed response head: {0}")]
    Malformed(httparse::Error),
    #[error("response head longer than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("response head with more than {limit} header fields")]
    TooManyHeaders { limit: usize },
    /// `HTTP/<digit>` other than 1.0 and 1.1.
    #[error("unsupported HTTP version (only HTTP/1.0 and HTTP/1.1 are spoken on this leg)")]
    UnsupportedVersion,
    /// A three-digit code outside 100..=599 (RFC 9110 §15: such values are invalid).
    #[error("invalid status code {0}")]
    BadStatus(u16),
    /// A field httparse accepted that `http`'s types refuse (e.g. a name over 64 KiB).
    #[error("invalid header field {0:?}")]
    BadHeader(String),
    /// A Content-Length element that is not 1*DIGIT or does not fit in a u64 (RFC 9110 §8.6).
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// Content-Length values that differ (RFC 9112 §6.3 item 5: unrecoverable).
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    /// RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
    #[error("Transfer-Encoding on an HTTP/1.0 response")]
    TransferEncodingOnHttp10,
    /// A request target that is not origin-form (or `*`) of visible ASCII.
    #[error("request target {0:?} is not origin-form visible ASCII")]
    BadTarget(String),
}

/// Why a chunked body (RFC 9112 §7.1) is refused. After an error the decoder is not used again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("malformed chunk size line")]
    BadSizeLine,
    #[error("chunk size does not fit in 63 bits")]
    SizeOverflow,
    #[error("chunk size line longer than {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("chunk data not followed by CRLF")]
    MissingCrlf,
    #[error("malformed trailer section")]
    BadTrailer,
    #[error("trailer section longer than {limit} bytes")]
    TrailersTooLong { limit: usize },
}

#[cfg(test)]
mod body_tests;
#[cfg(test)]
mod chunked_tests;
#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod response_tests;
