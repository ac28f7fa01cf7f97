//! Per-client-IP state of one scope (a listener: tunnels and handshake rate per IP; a route: tunnels
//! per IP), in a sharded table of bounded size. No I/O, no clock reads: callers pass `now_ms`.
//!
//! When the table is full it refuses new addresses rather than forget live counts (nginx's
//! `limit_conn` zone does the same when its shared memory is exhausted).

use std::collections::hash_map::{Entry as MapEntry, HashMap, RandomState};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::StatusCode;

use super::bucket::{Rate, TokenBucket};

/// Shards: handshakes from different addresses rarely wait for one another's lock.
const SHARDS: usize = 16;

/// After a sweep of a full shard that freed little, how long the shard answers `TableFull` to new
/// addresses without sweeping again.
const SWEEP_BACKOFF_MS: u64 = 1_000;

/// A sweep "freed little" below 1/16 of the shard. With this, sweeping costs at most 16 entries
/// looked at per address admitted, plus one sweep of the shard per second: never a sweep of the
/// whole shard per handshake, even when (say) one tunnel closes between two new addresses.
const SWEEP_MIN_YIELD_DIVISOR: usize = 16;

/// Why a client was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Limited {
    /// The address has its `max_tunnels` tunnels open.
    #[error("this client address has its maximum of tunnels open")]
    Tunnels,
    /// The address spent its handshake burst; tokens come back after `retry_after`.
    #[error("this client address is over its handshake rate; retry after {retry_after:?}")]
    Rate { retry_after: Duration },
    /// The table holds as many addresses as it may and every one of them is in use.
    #[error("the per-client table is full")]
    TableFull,
}

impl Limited {
    /// The `Retry-After` to send (RFC 9110 §10.2.3, whole seconds): the rate's wait rounded up,
    /// at least 1 s; 1 s for the others, whose end nothing here can predict.
    pub fn retry_after(&self) -> Duration {
        match self {
            Limited::Rate { retry_after } => {
                let round_up = u64::from(retry_after.subsec_nanos() > 0);
                Duration::from_secs(retry_after.as_secs().saturating_add(round_up).max(1))
            }
            Limited::Tunnels | Limited::TableFull => Duration::from_secs(1),
        }
    }

    /// The status the client gets: 429 (RFC 6585 §4) for what this client did itself, 503 for a
    /// table full of other clients (wsgate's state, not this client's fault).
    pub fn status(&self) -> StatusCode {
        match self {
            Limited::Tunnels | Limited::Rate { .. } => StatusCode::TOO_MANY_REQUESTS,
            Limited::TableFull => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// One address's state.
#[derive(Debug)]
struct Entry {
    tunnels: u32,
    /// Present once the scope has a handshake rate and this address has shaken hands.
    bucket: Option<TokenBucket>,
    /// The `now_ms` of the last handshake or tunnel (for the admin view).
    last_used_ms: u64,
}

impl Entry {
    /// Forgetting it loses nothing: no tunnels, and a new bucket would start as full as this one.
    fn is_idle(&self, now_ms: u64) -> bool {
        self.tunnels == 0 && self.bucket.as_ref().is_none_or(|b| b.is_full(now_ms))
    }
}

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<IpAddr, Entry>,
    /// Its share of the table's capacity.
    capacity: usize,
    /// No sweep before this `now_ms` (a sweep that freed little sets it).
    no_sweep_until_ms: u64,
    /// Entries looked at by sweeps, ever: the tests' measure of their cost.
    swept: u64,
}

impl Shard {
    /// The entry for `ip`, inserted if new and there is (or a sweep makes) room.
    fn entry(&mut self, ip: IpAddr, now_ms: u64) -> Result<&mut Entry, Limited> {
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.capacity {
            self.make_room(now_ms)?;
        }
        let entry = match self.entries.entry(ip) {
            MapEntry::Occupied(e) => e.into_mut(),
            MapEntry::Vacant(e) => e.insert(Entry {
                tunnels: 0,
                bucket: None,
                last_used_ms: now_ms,
            }),
        };
        entry.last_used_ms = now_ms;
        Ok(entry)
    }

    /// Removes every idle entry, or answers `TableFull` (straight away while backing off).
    fn make_room(&mut self, now_ms: u64) -> Result<(), Limited> {
        if now_ms < self.no_sweep_until_ms {
            return Err(Limited::TableFull);
        }
        let before = self.entries.len();
        self.swept = self.swept.saturating_add(before as u64);
        self.entries.retain(|_, e| !e.is_idle(now_ms));
        let freed = before - self.entries.len();
        if freed < (self.capacity / SWEEP_MIN_YIELD_DIVISOR).max(1) {
            self.no_sweep_until_ms = now_ms.saturating_add(SWEEP_BACKOFF_MS);
        }
        if self.entries.len() < self.capacity {
            Ok(())
        } else {
            Err(Limited::TableFull)
        }
    }
}

/// Per-client-IP tunnel counts and handshake buckets of one scope, bounded to `capacity` addresses.
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, a dual-stack socket's IPv4 clients) count as IPv4.
#[derive(Debug)]
pub struct ClientTable {
    shards: Box<[Mutex<Shard>]>,
    /// Picks the shard; keyed per table so that no one can aim addresses at one shard.
    hasher: RandomState,
}

impl ClientTable {
    /// A table for `capacity` addresses across all shards (at least 1; 100,000 by default).
    pub fn new(capacity: usize) -> Arc<Self> {
        let capacity = capacity.max(1);
        let count = SHARDS.min(capacity);
        let shards = (0..count)
            .map(|i| {
                // The remainder goes to the first shards: the shares add up to `capacity`.
                let share = capacity / count + usize::from(i < capacity % count);
                Mutex::new(Shard {
                    capacity: share,
                    ..Shard::default()
                })
            })
            .collect();
        Arc::new(ClientTable {
            shards,
            hasher: RandomState::new(),
        })
    }

    /// Takes one handshake token of `ip`'s bucket at `rate`, or says how long until there is one.
    pub fn admit_handshake(&self, ip: IpAddr, rate: Rate, now_ms: u64) -> Result<(), Limited> {
        let ip = ip.to_canonical();
        let mut shard = self.shard(ip);
        let entry = shard.entry(ip, now_ms)?;
        let rate = rate.normalised();
        let bucket = match &mut entry.bucket {
            // A reload that changed the rate starts the address afresh at the new one.
            Some(b) if b.rate() == rate => b,
            slot => slot.insert(TokenBucket::new(rate, now_ms)),
        };
        bucket
            .try_take(1, now_ms)
            .map_err(|retry_after| Limited::Rate { retry_after })
    }

    /// Counts a tunnel of `ip` if it has fewer than `max` open; the guard gives the place back.
    pub fn enter_tunnel(
        self: &Arc<Self>,
        ip: IpAddr,
        max: u32,
        now_ms: u64,
    ) -> Result<ClientGuard, Limited> {
        if max == 0 {
            return Err(Limited::Tunnels);
        }
        let ip = ip.to_canonical();
        let mut shard = self.shard(ip);
        let entry = shard.entry(ip, now_ms)?;
        if entry.tunnels >= max {
            return Err(Limited::Tunnels);
        }
        entry.tunnels += 1;
        drop(shard);
        Ok(ClientGuard {
            table: Arc::clone(self),
            ip,
        })
    }

    /// Addresses held, idle ones included.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).entries.len()).sum()
    }

    /// Tunnels open for `ip`.
    #[cfg(test)]
    pub fn tunnels(&self, ip: IpAddr) -> u32 {
        let ip = ip.to_canonical();
        self.shard(ip).entries.get(&ip).map_or(0, |e| e.tunnels)
    }

    /// Entries looked at by sweeps so far, all shards.
    #[cfg(test)]
    fn swept(&self) -> u64 {
        self.shards.iter().map(|s| lock(s).swept).sum()
    }

    fn shard(&self, ip: IpAddr) -> MutexGuard<'_, Shard> {
        // The modulo keeps the index in range; the cast back from u64 cannot lose a valid index.
        let index = self.hasher.hash_one(ip) % self.shards.len() as u64;
        lock(&self.shards[index as usize])
    }
}

/// A shard's lock. A panic elsewhere while it was held left nothing half-written (every change is
/// one field), so a poisoned lock is used as it is rather than spreading the panic.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One open tunnel of an address; dropping it gives the place back (the entry stays, idle).
#[derive(Debug)]
pub struct ClientGuard {
    table: Arc<ClientTable>,
    ip: IpAddr,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let mut shard = self.table.shard(self.ip);
        if let Some(entry) = shard.entries.get_mut(&self.ip) {
            entry.tunnels = entry.tunnels.saturating_sub(1);
        }
    }
}

#[cfg(test)]
#[path = "clients_tests.rs"]
mod tests;
