//! `/tunnels`: list, show and close live tunnels.

use std::sync::Arc;
use std::time::Duration;

use http::{Response, StatusCode};
use rand::Rng;

use super::query::{error, json};
use super::{Admin, Body};
use crate::relay::{LiveTunnel, CLOSE_GRACE, MAX_REASON_LEN};
use crate::sessions::{view, Filter, Pair};
use wsgate_proto::close::{is_valid_wire_code, CloseCode};

type Query = [Pair];

/// What an operator's close sends.
struct CloseAsk {
    code: u16,
    reason: String,
}

/// Longest `spread` a bulk close takes: a drain's order of magnitude, not a process's lifetime.
const MAX_SPREAD: Duration = Duration::from_secs(3600);

impl Admin {
    pub(super) fn list(&self, query: &Query) -> Response<Body> {
        let filter = match Filter::parse(query) {
            Ok((_, rest)) if !rest.is_empty() => return unknown(&rest[0].0),
            Ok((filter, _)) => filter,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
        let tunnels = self.sessions.list(&filter);
        let views: Vec<_> = tunnels.iter().map(|t| view(t, &t.snapshot())).collect();
        json(StatusCode::OK, &views)
    }

    pub(super) fn show(&self, id: u64, query: &Query) -> Response<Body> {
        if let Some((key, _)) = query.first() {
            return unknown(key);
        }
        match self.sessions.get(id) {
            Some(t) => json(StatusCode::OK, &view(&t, &t.snapshot())),
            None => missing(id),
        }
    }

    /// Closes one tunnel and waits for it to end, up to the close grace.
    pub(super) async fn close(&self, id: u64, query: &Query) -> Response<Body> {
        let ask = match close_ask(query) {
            Ok(ask) => ask,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
        let Some(tunnel) = self.sessions.get(id) else {
            return missing(id);
        };
        close_logged(&self.metrics, &tunnel, &ask);
        // The tunnel's own close grace bounds the handshake; a second over it, the tunnel is cut.
        let wait = CLOSE_GRACE + Duration::from_secs(1);
        let _ = tokio::time::timeout(wait, tunnel.ended()).await;
        // `closed` once the relay has ended.
        json(StatusCode::OK, &view(&tunnel, &tunnel.snapshot()))
    }

    /// Closes every tunnel a filter matches, each at a random moment of `spread`, as a drain does.
    pub(super) fn close_many(&self, query: &Query) -> Response<Body> {
        let (filter, pairs) = match Filter::parse(query) {
            Ok(parsed) => parsed,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
        let mut spread = Duration::from_secs(10);
        let mut all = false;
        let mut rest = Vec::new();
        for pair @ (key, value) in pairs {
            match key.as_str() {
                "spread" => match humantime::parse_duration(value) {
                    Ok(d) if d <= MAX_SPREAD => spread = d,
                    Ok(_) => return error(StatusCode::BAD_REQUEST, "spread: at most 1h"),
                    Err(e) => return error(StatusCode::BAD_REQUEST, format!("spread: {e}")),
                },
                "all" => match value.as_str() {
                    "" | "true" | "1" => all = true,
                    "false" | "0" => all = false,
                    _ => return error(StatusCode::BAD_REQUEST, "all: true or false"),
                },
                _ => rest.push(pair),
            }
        }
        let ask = match close_ask(rest) {
            Ok(ask) => ask,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
        if !filter.selects() && !all {
            return error(
                StatusCode::BAD_REQUEST,
                "give a filter (route, client, upstream, endpoint), or all=true to close every tunnel",
            );
        }
        let matched = self.sessions.list(&filter);
        let count = matched.len();
        tracing::info!(
            tunnels = count,
            ?spread,
            code = ask.code,
            route = filter.route.as_deref(),
            upstream = filter.upstream.as_deref(),
            endpoint = filter.endpoint.as_deref(),
            client = filter.client.map(|c| c.to_string()),
            "closing tunnels through the admin API"
        );
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut plan: Vec<(Duration, Arc<LiveTunnel>)> = {
                let mut rng = rand::rng();
                matched
                    .into_iter()
                    .map(|t| (spread.mul_f64(rng.random::<f64>()), t))
                    .collect()
            };
            plan.sort_unstable_by_key(|(at, _)| *at);
            for (at, tunnel) in plan {
                tokio::time::sleep_until(start + at).await;
                close_logged(&metrics, &tunnel, &ask);
            }
        });
        json(
            StatusCode::ACCEPTED,
            &serde_json::json!({ "matched": count, "spread_ms": spread.as_millis() as u64 }),
        )
    }
}

/// Asks the tunnel to close; logged and counted once per tunnel asked.
fn close_logged(metrics: &crate::metrics::Metrics, tunnel: &LiveTunnel, ask: &CloseAsk) {
    if tunnel.has_ended() {
        return;
    }
    let info = &tunnel.info;
    tracing::info!(
        tunnel = info.id,
        route = %info.route,
        client = %info.client,
        endpoint = %info.endpoint,
        code = ask.code,
        reason = %ask.reason,
        "tunnel closed through the admin API"
    );
    metrics.admin_close(&info.route);
    tunnel.close(ask.code, &ask.reason);
}

/// `code` (default 1001) and `reason` of a close; anything else is refused.
fn close_ask<'q>(
    query: impl IntoIterator<Item = &'q (String, String)>,
) -> Result<CloseAsk, String> {
    let mut ask = CloseAsk {
        code: CloseCode::GOING_AWAY.as_u16(),
        reason: String::new(),
    };
    for (key, value) in query {
        match key.as_str() {
            "code" => {
                ask.code = value
                    .parse::<u16>()
                    .ok()
                    .filter(|&c| is_valid_wire_code(c))
                    .ok_or_else(|| {
                        format!("code: {value:?} is not a close code one may send (1000-1003, 1007-1014, 3000-4999)")
                    })?
            }
            "reason" if value.len() > MAX_REASON_LEN => {
                return Err(format!(
                    "reason: {} bytes, at most {MAX_REASON_LEN}",
                    value.len()
                ))
            }
            "reason" => ask.reason = value.clone(),
            _ => return Err(unknown_parameter(key)),
        }
    }
    Ok(ask)
}

pub(super) fn unknown(key: &str) -> Response<Body> {
    error(StatusCode::BAD_REQUEST, unknown_parameter(key))
}

fn unknown_parameter(key: &str) -> String {
    format!("unknown query parameter {key:?}")
}

pub(super) fn missing(id: u64) -> Response<Body> {
    error(StatusCode::NOT_FOUND, format!("no tunnel {id}"))
}
