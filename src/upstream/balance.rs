//! Which endpoint takes the next request: round robin, fewest tunnels, or rendezvous hashing on a
//! key, among the endpoints that are eligible (healthy and not yet tried). Pure: no I/O, no clock.

use std::hash::{Hash, Hasher};

use crate::config::Balance;

/// What the balancer needs to know of one endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// Healthy and not yet tried for this request.
    pub eligible: bool,
    /// Open WebSocket tunnels (for least_connections).
    pub tunnels: usize,
    /// A stable hash of the endpoint's address (for rendezvous hashing).
    pub id: u64,
}

/// `turn` rotates round robin (and breaks least_connections ties); `key` is the hash key of the
/// request for `Balance::Hash` (without one, hashing falls back to round robin).
pub fn choose(
    balance: &Balance,
    candidates: &[Candidate],
    turn: usize,
    key: Option<u64>,
) -> Option<usize> {
    let n = candidates.len();
    let rotation = (0..n).map(|i| (turn + i) % n);
    match (balance, key) {
        (Balance::Hash(_), Some(key)) => candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.eligible)
            .max_by_key(|(_, c)| mix(key, c.id))
            .map(|(i, _)| i),
        (Balance::LeastConnections, _) => rotation
            .filter(|&i| candidates[i].eligible)
            .min_by_key(|&i| candidates[i].tunnels),
        _ => rotation.into_iter().find(|&i| candidates[i].eligible),
    }
}

/// A 64-bit hash with fixed keys: the same for every request in this process (and in every process of
/// one build), so a key keeps its endpoint.
pub fn stable_hash(value: impl Hash) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// Rendezvous weight of (key, endpoint): each key ranks endpoints independently, so removing one
/// endpoint moves only the keys it held.
fn mix(key: u64, id: u64) -> u64 {
    let mut x = key ^ id.rotate_left(32);
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HashKey;

    fn candidates(n: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                eligible: true,
                tunnels: 0,
                id: stable_hash(format!("10.0.0.{i}:80")),
            })
            .collect()
    }

    #[test]
    fn round_robin_skips_ineligible() {
        let mut c = candidates(3);
        let picks: Vec<_> = (0..6)
            .map(|t| choose(&Balance::RoundRobin, &c, t, None))
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2].map(Some));
        c[1].eligible = false;
        assert_eq!(choose(&Balance::RoundRobin, &c, 1, None), Some(2));
        c.iter_mut().for_each(|c| c.eligible = false);
        assert_eq!(choose(&Balance::RoundRobin, &c, 0, None), None);
    }

    #[test]
    fn least_connections_with_rotating_ties() {
        let mut c = candidates(3);
        c[0].tunnels = 5;
        c[1].tunnels = 2;
        c[2].tunnels = 2;
        assert_eq!(choose(&Balance::LeastConnections, &c, 0, None), Some(1));
        assert_eq!(choose(&Balance::LeastConnections, &c, 2, None), Some(2));
        c[1].eligible = false;
        c[2].eligible = false;
        assert_eq!(choose(&Balance::LeastConnections, &c, 0, None), Some(0));
    }

    #[test]
    fn hashing_is_sticky_and_moves_only_the_lost_endpoints_keys() {
        let hash = Balance::Hash(HashKey::ClientIp);
        let mut c = candidates(4);
        let keys: Vec<u64> = (0..200)
            .map(|k| stable_hash(format!("client-{k}")))
            .collect();
        let before: Vec<_> = keys
            .iter()
            .map(|&k| choose(&hash, &c, 7, Some(k)).unwrap())
            .collect();
        // Sticky whatever the turn.
        for (k, &b) in keys.iter().zip(&before) {
            assert_eq!(choose(&hash, &c, 99, Some(*k)), Some(b));
        }
        // Every endpoint gets some keys.
        for e in 0..4 {
            assert!(
                before.iter().filter(|&&b| b == e).count() > 20,
                "endpoint {e}"
            );
        }
        c[2].eligible = false;
        for (k, &b) in keys.iter().zip(&before) {
            let after = choose(&hash, &c, 0, Some(*k)).unwrap();
            if b != 2 {
                assert_eq!(after, b, "a key not on the lost endpoint moved");
            } else {
                assert_ne!(after, 2);
            }
        }
        // No key: round robin.
        assert_eq!(choose(&hash, &candidates(2), 1, None), Some(1));
    }
}
