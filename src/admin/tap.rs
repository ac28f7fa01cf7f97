//! `GET /tunnels/{id}/tap`: one JSON line per frame the tunnel carries, streamed as it carries them,
//! until `limit` frames or the tunnel's end.

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::sync::broadcast::error::RecvError;

use super::query::error;
use super::tunnels::{missing, unknown};
use super::{Admin, Body};
use crate::relay::tap::{TapReceiver, MAX_TAP_PAYLOAD};
use crate::sessions::{tap_line, Pair, TapLine};

struct Tap {
    frames: TapReceiver,
    started: std::time::SystemTime,
    /// Frames still to show (`None`: until the end).
    left: Option<u64>,
    payload: usize,
    done: bool,
}

impl Admin {
    pub(super) fn tap(&self, id: u64, query: &[Pair]) -> Response<Body> {
        let mut limit = None;
        let mut payload = 0;
        for (key, value) in query {
            let number = || value.parse::<u64>().ok();
            match key.as_str() {
                "limit" => match number() {
                    Some(n) if n > 0 => limit = Some(n),
                    _ => return error(StatusCode::BAD_REQUEST, "limit: a whole number above 0"),
                },
                "payload" => match number() {
                    Some(n) if n as usize <= MAX_TAP_PAYLOAD => payload = n as usize,
                    _ => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            format!("payload: a number of bytes up to {MAX_TAP_PAYLOAD}"),
                        )
                    }
                },
                _ => return unknown(key),
            }
        }
        if payload > 0 && !self.access.policy().tap_payloads {
            return error(
                StatusCode::FORBIDDEN,
                "payloads are not shown: admin.tap_payloads is off",
            );
        }
        let Some(tunnel) = self.sessions.get(id) else {
            return missing(id);
        };
        let Some(frames) = tunnel.tap(payload) else {
            return missing(id);
        };
        tracing::info!(tunnel = id, route = %tunnel.info.route, payload, "tap attached");
        let tap = Tap {
            frames,
            started: tunnel.started(),
            left: limit,
            payload,
            done: false,
        };
        let body = StreamBody::new(futures_util::stream::unfold(tap, next_line));
        let mut response = Response::new(body.boxed());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

/// The next line of the stream, or its end.
async fn next_line(mut tap: Tap) -> Option<(Result<Frame<Bytes>, Infallible>, Tap)> {
    if tap.done {
        return None;
    }
    let line = if tap.left == Some(0) {
        tap.done = true;
        render(&TapLine::End { end: "limit" })
    } else {
        match tap.frames.recv().await {
            Ok(frame) => {
                if let Some(left) = tap.left.as_mut() {
                    *left -= 1;
                }
                render(&tap_line(&frame, tap.started, tap.payload))
            }
            Err(RecvError::Lagged(dropped)) => render(&TapLine::Dropped { dropped }),
            Err(RecvError::Closed) => {
                tap.done = true;
                render(&TapLine::End { end: "closed" })
            }
        }
    };
    Some((Ok(Frame::data(line)), tap))
}

fn render(line: &TapLine<'_>) -> Bytes {
    let mut text = serde_json::to_vec(line).unwrap_or_default();
    text.push(b'\n');
    Bytes::from(text)
}
