//! Where live tunnels are found by id or by filter. Sharded by id, so that tunnels starting and
//! ending on different threads rarely meet on one lock, and a listing holds each shard only while
//! it copies the handles of its matches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::Filter;
use crate::relay::{LiveTunnel, TunnelInfo};

const SHARDS: usize = 16;

type Shard = Mutex<HashMap<u64, Arc<LiveTunnel>>>;

pub struct Registry {
    next_id: AtomicU64,
    shards: [Shard; SHARDS],
}

/// A tunnel's place in the registry: it leaves when this is dropped (with the tunnel's relay, or
/// with its parameters when the relay never starts), and is ended (again, if its relay ran and
/// ended it) so that its taps and waiters are told either way.
pub struct Registration {
    registry: Arc<Registry>,
    tunnel: Arc<LiveTunnel>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            next_id: AtomicU64::new(1),
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }
}

impl Registry {
    fn shard(&self, id: u64) -> &Shard {
        &self.shards[(id % SHARDS as u64) as usize]
    }

    /// Enters a tunnel under a fresh id (never reused in this process).
    pub fn register(self: &Arc<Self>, mut info: TunnelInfo) -> (Arc<LiveTunnel>, Registration) {
        info.id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tunnel = Arc::new(LiveTunnel::new(info));
        self.shard(tunnel.info.id)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tunnel.info.id, tunnel.clone());
        let registration = Registration {
            registry: self.clone(),
            tunnel: tunnel.clone(),
        };
        (tunnel, registration)
    }

    pub fn get(&self, id: u64) -> Option<Arc<LiveTunnel>> {
        self.shard(id)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// The tunnels `filter` matches, lowest id (oldest) first, at most `filter.limit`.
    pub fn list(&self, filter: &Filter) -> Vec<Arc<LiveTunnel>> {
        let mut found = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            found.extend(shard.values().filter(|t| filter.matches(&t.info)).cloned());
        }
        found.sort_unstable_by_key(|t| t.info.id);
        if let Some(limit) = filter.limit {
            found.truncate(limit);
        }
        found
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let id = self.tunnel.info.id;
        self.registry
            .shard(id)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        self.tunnel.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Transport;

    pub(crate) fn info(route: &str, client: &str) -> TunnelInfo {
        TunnelInfo {
            id: 0,
            route: route.into(),
            listener: "public".into(),
            client: client.parse().unwrap(),
            upstream: "u".into(),
            endpoint: "127.0.0.1:9001".into(),
            transport: Transport::H1,
            subprotocol: None,
            extensions: None,
            subject: None,
        }
    }

    #[test]
    fn ids_are_fresh_and_a_tunnel_leaves_with_its_registration() {
        let registry = Arc::new(Registry::default());
        let (a, ra) = registry.register(info("chat", "127.0.0.1:1000"));
        let (b, _rb) = registry.register(info("game", "127.0.0.2:1000"));
        assert_eq!((a.info.id, b.info.id), (1, 2));
        assert_eq!(registry.len(), 2);
        assert!(registry.get(1).is_some());
        drop(ra);
        assert!(registry.get(1).is_none());
        assert!(a.has_ended());
        assert!(!b.has_ended());
        let (c, _rc) = registry.register(info("chat", "127.0.0.1:1001"));
        assert_eq!(c.info.id, 3);
    }

    #[test]
    fn a_listing_is_oldest_first_filtered_and_limited() {
        let registry = Arc::new(Registry::default());
        let held: Vec<_> = (0..40)
            .map(|i| {
                let route = if i % 2 == 0 { "chat" } else { "game" };
                registry.register(info(route, &format!("127.0.0.1:{}", 1000 + i)))
            })
            .collect();
        let all = registry.list(&Filter::default());
        assert_eq!(all.len(), 40);
        assert!(all.windows(2).all(|w| w[0].info.id < w[1].info.id));
        let chat = Filter {
            route: Some("chat".into()),
            limit: Some(5),
            ..Filter::default()
        };
        let ids: Vec<u64> = registry.list(&chat).iter().map(|t| t.info.id).collect();
        assert_eq!(ids, vec![1, 3, 5, 7, 9]);
        drop(held);
        assert!(registry.is_empty());
    }
}
