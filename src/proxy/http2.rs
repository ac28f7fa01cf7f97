//! What an HTTP/2 request needs before the rest of the proxy sees it as it would an HTTP/1.1 one
//! (RFC 9113 §8.3.1, §8.2.3): `Host` from `:authority`, crumbled cookies joined again; and which
//! extended CONNECTs are WebSockets (RFC 8441).

use http::header::{COOKIE, HOST};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::ext::Protocol;

use super::{error_response, Body};
use wsgate_proto::handshake::is_websocket_connect;

/// Rewrites the request's headers as an HTTP/1.1 request would carry them. `:authority` wins over a
/// `Host` header (RFC 9113 §8.3.1), so routing and the upstream see the same host.
pub(super) fn as_http1_headers<B>(req: &mut Request<B>) {
    let authority = req
        .uri()
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
    if let Some(authority) = authority {
        req.headers_mut().insert(HOST, authority);
    }
    // An HTTP/2 client may send each cookie in a field of its own; HTTP/1.1 allows one line.
    let headers = req.headers_mut();
    if headers.get_all(COOKIE).iter().nth(1).is_some() {
        let joined: Vec<&[u8]> = headers
            .get_all(COOKIE)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        if let Ok(value) = HeaderValue::from_bytes(&joined.join(&b"; "[..])) {
            headers.insert(COOKIE, value);
        }
    }
}

/// What a request's `:protocol` makes it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Connect {
    /// No `:protocol`: an ordinary request.
    None,
    /// An extended CONNECT for a WebSocket.
    WebSocket,
    /// An extended CONNECT for a protocol wsgate does not proxy.
    Unknown,
}

pub(super) fn connect_protocol<B>(req: &Request<B>) -> Connect {
    match req.extensions().get::<Protocol>() {
        None => Connect::None,
        Some(p) if is_websocket_connect(req.method(), Some(p.as_str())) => Connect::WebSocket,
        Some(_) => Connect::Unknown,
    }
}

/// The answer to an extended CONNECT for another protocol than WebSocket.
pub(super) fn unknown_protocol() -> Response<Body> {
    error_response(StatusCode::NOT_IMPLEMENTED, Default::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_becomes_host_and_cookies_one_line() {
        let mut req = Request::builder()
            .uri("https://chat.example:8443/ws?x=1")
            .header("host", "other.example")
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .body(())
            .unwrap();
        as_http1_headers(&mut req);
        assert_eq!(req.headers()["host"], "chat.example:8443");
        let cookies: Vec<_> = req.headers().get_all("cookie").iter().collect();
        assert_eq!(cookies, ["a=1; b=2"]);
    }

    #[test]
    fn only_a_websocket_connect_is_one() {
        let mut req = Request::builder()
            .method("CONNECT")
            .uri("https://a/b")
            .body(())
            .unwrap();
        assert_eq!(connect_protocol(&req), Connect::None);
        req.extensions_mut()
            .insert(Protocol::from_static("websocket"));
        assert_eq!(connect_protocol(&req), Connect::WebSocket);
        req.extensions_mut()
            .insert(Protocol::from_static("webtransport"));
        assert_eq!(connect_protocol(&req), Connect::Unknown);
        assert_eq!(unknown_protocol().status(), StatusCode::NOT_IMPLEMENTED);
    }
}
