//! A small HTTP/1.1 client for the admin API: one connection per request, a token when given,
//! timeouts on everything but a tap's stream.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, AUTHORIZATION, HOST};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::error::CliError;

/// To connect, and for a whole answer that is not a stream.
pub const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Admin {
    pub addr: String,
    pub token: Option<String>,
}

impl Admin {
    /// The JSON answer of `method target`, within `answer_timeout` once connected.
    pub async fn json(
        &self,
        method: Method,
        target: &str,
        answer_timeout: Duration,
    ) -> Result<serde_json::Value, CliError> {
        let exchange = async {
            let response = self.send(method, target).await?;
            let status = response.status();
            let body = self.body(response).await?;
            if !status.is_success() {
                return Err(server_error(status.as_u16(), &body));
            }
            serde_json::from_slice(&body).map_err(|e| CliError::BadAnswer(e.to_string()))
        };
        self.within(answer_timeout, exchange).await
    }

    /// Streams the lines of `GET target` to `on_line` until it returns false or the body ends.
    /// Only the head of the answer has a timeout: a tap may wait long for its next frame.
    pub async fn lines(
        &self,
        target: &str,
        mut on_line: impl FnMut(&str) -> Result<bool, CliError>,
    ) -> Result<(), CliError> {
        let response = self.within(TIMEOUT, self.send(Method::GET, target)).await?;
        let status = response.status();
        if !status.is_success() {
            let body = self.within(TIMEOUT, self.body(response)).await?;
            return Err(server_error(status.as_u16(), &body));
        }
        let mut body = response.into_body();
        let mut pending = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|source| self.http(source))?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            pending.extend_from_slice(&data);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if !on_line(String::from_utf8_lossy(&line).trim_end())? {
                    return Ok(());
                }
            }
        }
        let rest = String::from_utf8_lossy(&pending);
        if !rest.trim().is_empty() && !on_line(rest.trim_end())? {
            return Ok(());
        }
        Err(CliError::TapCut)
    }

    async fn send(&self, method: Method, target: &str) -> Result<Response<Incoming>, CliError> {
        let stream = self
            .within(TIMEOUT, async {
                TcpStream::connect(&self.addr)
                    .await
                    .map_err(|e| self.unreachable(e.to_string()))
            })
            .await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| self.http(source))?;
        // The connection's own error also fails the request, which is where it is reported.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut request = Request::builder()
            .method(method)
            .uri(target)
            .header(HOST, &self.addr)
            .header(ACCEPT, "application/json, application/x-ndjson");
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| self.unreachable(format!("bad request: {e}")))?;
        sender
            .send_request(request)
            .await
            .map_err(|source| self.http(source))
    }

    async fn body(&self, response: Response<Incoming>) -> Result<Bytes, CliError> {
        let collected = response
            .into_body()
            .collect()
            .await
            .map_err(|source| self.http(source))?;
        Ok(collected.to_bytes())
    }

    async fn within<T>(
        &self,
        limit: Duration,
        work: impl std::future::Future<Output = Result<T, CliError>>,
    ) -> Result<T, CliError> {
        tokio::time::timeout(limit, work)
            .await
            .map_err(|_| CliError::Timeout {
                addr: self.addr.clone(),
                seconds: limit.as_secs(),
            })?
    }

    fn unreachable(&self, reason: String) -> CliError {
        CliError::Unreachable {
            addr: self.addr.clone(),
            reason,
        }
    }

    fn http(&self, source: hyper::Error) -> CliError {
        CliError::Http {
            addr: self.addr.clone(),
            source,
        }
    }
}

/// The API's `{"error": ..}` text, or the body itself when it is not that.
fn server_error(status: u16, body: &[u8]) -> CliError {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned));
    let message = from_json.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body).trim().to_owned();
        if text.is_empty() {
            "no error text".to_owned()
        } else {
            text
        }
    });
    CliError::Server { status, message }
}

/// `?k=v&..` of the pairs that have a value, each value percent-encoded; "" when none has.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(key, value)| Some(format!("{key}={}", encode(value.as_deref()?))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encodes_values_and_skips_absent_ones() {
        assert_eq!(query(&[("route", None)]), "");
        let q = query(&[
            ("code", Some("4000".into())),
            ("x", None),
            ("reason", Some("bye now/é&=".into())),
        ]);
        assert_eq!(q, "?code=4000&reason=bye%20now%2F%C3%A9%26%3D");
    }

    #[test]
    fn server_errors_carry_the_json_text_or_the_body() {
        let e = server_error(404, br#"{"error":"no tunnel 17"}"#);
        assert_eq!(e.to_string(), "no tunnel 17 (HTTP 404)");
        let e = server_error(502, b"bad gateway\n");
        assert_eq!(e.to_string(), "bad gateway (HTTP 502)");
        let e = server_error(500, b"");
        assert_eq!(e.to_string(), "no error text (HTTP 500)");
    }
}
