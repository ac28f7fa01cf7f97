//! The choice of endpoint for one request: its hash key (`balance: hash`), the endpoint its
//! affinity cookie pins, and which endpoints it has tried.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};

use super::balance::{choose, stable_hash, Candidate};
use super::endpoint::Endpoint;
use super::{sticky, Upstream};
use crate::config::{Balance, HashKey};

/// What a request brings to the choice of endpoint: its hash key (`balance: hash`) and the endpoint
/// its affinity cookie names (`sticky_cookie`), which wins while it is eligible.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection {
    pub key: Option<u64>,
    pub pinned: Option<usize>,
}

impl Upstream {
    /// How the request's headers and peer bear on the choice of endpoint.
    pub fn select(&self, headers: &HeaderMap, peer: SocketAddr) -> Selection {
        Selection {
            key: self.hash_key(headers, peer),
            pinned: self.sticky.as_ref().and_then(|s| s.pinned(headers)),
        }
    }

    /// The hash key of a request for `balance: hash` (`None` for other balancers, or when the request
    /// lacks the header or cookie: then the choice falls back to round robin).
    fn hash_key(&self, headers: &HeaderMap, peer: SocketAddr) -> Option<u64> {
        let Balance::Hash(key) = &self.config.balance else {
            return None;
        };
        match key {
            HashKey::ClientIp => Some(stable_hash(peer.ip())),
            HashKey::Header(name) => headers
                .get(name.as_str())
                .map(|v| stable_hash(v.as_bytes())),
            HashKey::Cookie(name) => sticky::cookies(headers)
                .find(|(k, _)| k == name)
                .map(|(_, v)| stable_hash(v)),
        }
    }

    /// An eligible endpoint that `tried` does not mark, or `None`: the pinned one if it is such,
    /// else the balancer's choice.
    pub(super) fn pick(&self, selection: &Selection, tried: &[bool]) -> Option<Arc<Endpoint>> {
        let candidates: Vec<Candidate> = self
            .endpoints
            .iter()
            .zip(tried)
            .map(|(e, &tried)| Candidate {
                eligible: !tried && e.eligible(),
                tunnels: e.tunnels(),
                id: e.id,
            })
            .collect();
        if let Some(i) = selection.pinned.filter(|&i| candidates[i].eligible) {
            return Some(self.endpoints[i].clone());
        }
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        choose(&self.config.balance, &candidates, turn, selection.key)
            .map(|i| self.endpoints[i].clone())
    }

    /// The affinity cookie for a response from `endpoint`: `None` without `sticky_cookie`, or when
    /// the request's cookie already names it. `tls`: the client came over a TLS listener.
    pub fn affinity_cookie(
        &self,
        selection: &Selection,
        endpoint: &Endpoint,
        tls: bool,
    ) -> Option<HeaderValue> {
        let sticky = self.sticky.as_ref()?;
        let index = self.endpoints.iter().position(|e| e.id == endpoint.id)?;
        (selection.pinned != Some(index)).then(|| sticky.set_cookie(index, tls))
    }

    /// Marks `endpoint` as tried in `tried`.
    pub(super) fn mark_tried(&self, endpoint: &Endpoint, tried: &mut [bool]) {
        if let Some(i) = self.endpoints.iter().position(|e| e.id == endpoint.id) {
            tried[i] = true;
        }
    }

    pub(super) fn untried(&self) -> Vec<bool> {
        vec![false; self.endpoints.len()]
    }
}
