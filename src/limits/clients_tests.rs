//! Per-client table tests: tunnel counts and guards, handshake rates, the bound (TableFull, idle
//! entries evicted, a flood of addresses), IPv4-mapped addresses, and threads entering and leaving.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use super::*;

fn v4(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(n))
}

/// Addresses spread over 127.0.0.0/8.
fn loopback(i: u32) -> IpAddr {
    v4(0x7f00_0000 | (i.wrapping_mul(2_654_435_761) & 0x00ff_ffff))
}

fn v6(i: u64) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(
        0x2001_0db8_0000_0000_0000_0000_0000_0000_u128 | u128::from(i),
    ))
}

const RATE: Rate = Rate {
    per_second: 2,
    burst: 3,
};

#[test]
fn the_table_is_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<ClientTable>();
    both::<ClientGuard>();
}

#[test]
fn n_tunnels_then_the_next_is_refused_and_a_drop_frees_a_place() {
    let table = ClientTable::new(100);
    let ip = loopback(1);
    let mut guards: Vec<_> = (0..3)
        .map(|_| table.enter_tunnel(ip, 3, 0).expect("under the limit"))
        .collect();
    assert_eq!(table.tunnels(ip), 3);
    assert_eq!(table.enter_tunnel(ip, 3, 0).err(), Some(Limited::Tunnels));
    // Another address has its own count.
    assert!(table.enter_tunnel(loopback(2), 3, 0).is_ok());
    guards.pop();
    assert_eq!(table.tunnels(ip), 2);
    guards.push(table.enter_tunnel(ip, 3, 1).expect("a place was freed"));
    drop(guards);
    assert_eq!(table.tunnels(ip), 0);
    assert_eq!(table.len(), 2, "entries stay, idle");
    assert_eq!(table.enter_tunnel(ip, 0, 0).err(), Some(Limited::Tunnels));
}

#[test]
fn a_burst_of_handshakes_then_rate_with_its_retry_after_then_refilled() {
    let table = ClientTable::new(100);
    let ip = v6(7);
    for _ in 0..3 {
        assert_eq!(table.admit_handshake(ip, RATE, 1_000), Ok(()));
    }
    // 2/s: the next token in 500 ms.
    let refused = table.admit_handshake(ip, RATE, 1_000).unwrap_err();
    assert_eq!(
        refused,
        Limited::Rate {
            retry_after: Duration::from_millis(500)
        }
    );
    assert_eq!(refused.retry_after(), Duration::from_secs(1));
    assert_eq!(
        table
            .admit_handshake(ip, RATE, 1_499)
            .err()
            .map(|e| e.retry_after()),
        Some(Duration::from_secs(1))
    );
    assert_eq!(table.admit_handshake(ip, RATE, 1_500), Ok(()));
    // Another address is not affected.
    assert_eq!(table.admit_handshake(v6(8), RATE, 1_500), Ok(()));
    // After 1.5 s three tokens are back.
    for _ in 0..3 {
        assert_eq!(table.admit_handshake(ip, RATE, 3_000), Ok(()));
    }
    assert!(table.admit_handshake(ip, RATE, 3_000).is_err());
}

#[test]
fn a_changed_rate_starts_the_address_afresh() {
    let table = ClientTable::new(10);
    let ip = loopback(3);
    let one = Rate {
        per_second: 1,
        burst: 1,
    };
    assert_eq!(table.admit_handshake(ip, one, 0), Ok(()));
    assert!(table.admit_handshake(ip, one, 0).is_err());
    assert_eq!(table.admit_handshake(ip, RATE, 0), Ok(()));
}

#[test]
fn limited_maps_to_one_status_and_retry_after_each() {
    let rate = |ms| Limited::Rate {
        retry_after: Duration::from_millis(ms),
    };
    assert_eq!(Limited::Tunnels.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(rate(1).status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(Limited::TableFull.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(Limited::Tunnels.retry_after(), Duration::from_secs(1));
    assert_eq!(Limited::TableFull.retry_after(), Duration::from_secs(1));
    assert_eq!(rate(0).retry_after(), Duration::from_secs(1), "min 1");
    assert_eq!(rate(1).retry_after(), Duration::from_secs(1));
    assert_eq!(rate(1_000).retry_after(), Duration::from_secs(1));
    assert_eq!(rate(1_001).retry_after(), Duration::from_secs(2));
    let never = Limited::Rate {
        retry_after: Duration::MAX,
    };
    assert_eq!(never.retry_after(), Duration::from_secs(u64::MAX));
}

#[test]
fn capacity_is_shared_out_exactly() {
    for capacity in [0, 1, 5, 16, 17, 1_000, 100_000] {
        let table = ClientTable::new(capacity);
        let total: usize = table.shards.iter().map(|s| lock(s).capacity).sum();
        assert_eq!(total, capacity.max(1), "capacity {capacity}");
    }
}

#[test]
fn a_full_table_of_live_tunnels_refuses_new_addresses_and_evicts_idle_ones() {
    let capacity = 48;
    let table = ClientTable::new(capacity);
    let addresses: Vec<IpAddr> = (0..2_000)
        .map(|i| {
            if i % 2 == 0 {
                loopback(i)
            } else {
                v6(u64::from(i))
            }
        })
        .collect();
    let mut guards = Vec::new();
    let mut full = 0;
    for &ip in &addresses {
        match table.enter_tunnel(ip, 1, 0) {
            Ok(g) => guards.push(g),
            Err(e) => {
                assert_eq!(e, Limited::TableFull);
                full += 1;
            }
        }
    }
    // 2,000 addresses over 16 shards: every shard filled to its share.
    assert_eq!(guards.len(), capacity);
    assert_eq!(table.len(), capacity);
    assert_eq!(full, 2_000 - capacity);
    // Known addresses are still served (here: refused for their own count, not the table).
    let held = guards[0].ip;
    assert_eq!(table.enter_tunnel(held, 1, 0).err(), Some(Limited::Tunnels));

    // Every tunnel closes: the entries are idle, and new addresses take their places once the
    // shards' back-off (1 s after a sweep that freed nothing) is over.
    drop(guards);
    let fresh = |i: u32| v6(1_000_000 + u64::from(i));
    assert_eq!(
        table.enter_tunnel(fresh(0), 1, 999).err(),
        Some(Limited::TableFull)
    );
    let admitted: Vec<_> = (0..2_000)
        .filter_map(|i| table.enter_tunnel(fresh(i), 1, 1_000).ok())
        .collect();
    assert_eq!(admitted.len(), capacity);
    assert_eq!(table.len(), capacity);
    assert!(addresses.iter().all(|&ip| table.tunnels(ip) == 0));
}

#[test]
fn handshake_buckets_keep_entries_until_they_are_full_again() {
    let capacity = 32;
    let table = ClientTable::new(capacity);
    let admitted = (0..1_000)
        .filter(|&i| table.admit_handshake(loopback(i), RATE, 0).is_ok())
        .count();
    assert_eq!(admitted, capacity);
    // At 1 s the buckets (2/s, one token spent) are full again: idle, and evicted for new addresses.
    assert_eq!(
        table.admit_handshake(v6(1), RATE, 400),
        Err(Limited::TableFull)
    );
    let later = (0..1_000)
        .filter(|&i| table.admit_handshake(v6(i), RATE, 1_500).is_ok())
        .count();
    assert_eq!(later, capacity);
}

#[test]
fn a_sweep_that_frees_little_backs_off_instead_of_sweeping_per_handshake() {
    // One shard's share is 100: a sweep freeing fewer than 6 entries backs off.
    let capacity = 1_600;
    let table = ClientTable::new(capacity);
    let mut guards: Vec<_> = (0..100_000)
        .filter_map(|i| table.enter_tunnel(v4(i), 1, 0).ok())
        .collect();
    assert_eq!(guards.len(), capacity);
    let swept_before = table.swept();
    // One tunnel closes before each new address: without the back-off, each would sweep a shard
    // (100,000 entries looked at). At 5 s: the back-off of the sweeps that filled the table is over.
    let mut admitted = 0;
    for i in 0..1_000 {
        guards.remove(0);
        if let Ok(g) = table.enter_tunnel(v4(1_000_000 + i), 1, 5_000) {
            guards.push(g);
            admitted += 1;
        }
    }
    let swept = table.swept() - swept_before;
    // Within the second: one sweep per shard that freed little (16 x 100), and sweeps that freed
    // at least 6 cost at most 100 / 6 entries per address they made room for.
    assert!(
        swept <= 16 * 100 + 17 * admitted,
        "{swept} entries swept for {admitted} admitted"
    );
    assert!(swept > 0 && admitted > 0);
}

#[test]
fn a_flood_of_a_million_addresses_stays_within_capacity() {
    let capacity = 1_000;
    let table = ClientTable::new(capacity);
    let flood: u32 = 1_000_000;
    let started = std::time::Instant::now();
    let (mut admitted, mut full) = (0u32, 0u32);
    let mut guards = std::collections::VecDeque::new();
    for i in 0..flood {
        let ip = if i % 2 == 0 {
            v4(0x0a00_0000 + i)
        } else {
            v6(u64::from(i))
        };
        // 10 ms of clock per 1,000 addresses: the flood lasts 10 s, buckets refill in 500 ms.
        let now = u64::from(i / 100);
        match table.admit_handshake(ip, RATE, now) {
            Ok(()) => admitted += 1,
            Err(e) => {
                assert_eq!(e, Limited::TableFull);
                full += 1;
            }
        }
        // Some of them hold a tunnel for a while.
        if i % 1_000 == 0 {
            if let Ok(g) = table.enter_tunnel(ip, 1, now) {
                guards.push_back(g);
            }
            if guards.len() > 100 {
                guards.pop_front();
            }
        }
        if i % 10_000 == 0 {
            assert!(table.len() <= capacity, "{} entries", table.len());
        }
    }
    assert!(table.len() <= capacity);
    // About a table's worth per second of back-off: refusing is the price of never forgetting.
    assert!(
        admitted >= 5_000 && full > 0,
        "{admitted} admitted, {full} full"
    );
    // The cost of the bound: far less than one entry looked at per handshake (a sweep per
    // handshake would be about 60).
    let swept = table.swept();
    assert!(swept <= u64::from(flood) / 10, "{swept} entries swept");
    eprintln!(
        "flood: {admitted} admitted, {full} refused, {swept} swept, {:?}",
        started.elapsed()
    );
}

#[test]
fn ipv4_mapped_ipv6_counts_as_the_ipv4_address() {
    let table = ClientTable::new(10);
    let plain = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
    let _a = table.enter_tunnel(plain, 2, 0).expect("first");
    let b = table.enter_tunnel(mapped, 2, 0).expect("second");
    assert_eq!(table.tunnels(plain), 2);
    assert_eq!(table.tunnels(mapped), 2);
    assert_eq!(
        table.enter_tunnel(mapped, 2, 0).err(),
        Some(Limited::Tunnels)
    );
    assert_eq!(table.len(), 1);
    drop(b);
    assert_eq!(table.tunnels(plain), 1);
    // The handshake bucket is shared too.
    for _ in 0..3 {
        assert_eq!(table.admit_handshake(mapped, RATE, 0), Ok(()));
    }
    assert!(table.admit_handshake(plain, RATE, 0).is_err());
    // An IPv4-compatible address (::c000:201, deprecated) is an IPv6 address of its own.
    let compatible = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_compatible());
    assert_eq!(table.tunnels(compatible), 0);
}

#[test]
fn threads_entering_and_leaving_concurrently_end_with_all_counts_zero() {
    let table = ClientTable::new(64);
    let addresses: Arc<Vec<IpAddr>> = Arc::new(
        (0..8u8)
            .map(|i| {
                // Four clients, each seen both plainly and through a dual-stack socket.
                let ip = Ipv4Addr::new(10, 0, 0, i / 2);
                if i % 2 == 0 {
                    IpAddr::V4(ip)
                } else {
                    IpAddr::V6(ip.to_ipv6_mapped())
                }
            })
            .collect(),
    );
    let max = 3;
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let table = Arc::clone(&table);
            let addresses = Arc::clone(&addresses);
            std::thread::spawn(move || {
                let mut held = Vec::new();
                for i in 0..20_000u64 {
                    let ip = addresses[((i * 7 + t) % 8) as usize];
                    let now = i / 10;
                    match table.enter_tunnel(ip, max, now) {
                        Ok(g) => held.push(g),
                        Err(e) => assert_eq!(e, Limited::Tunnels),
                    }
                    assert!(table.tunnels(ip) <= max);
                    let _ = table.admit_handshake(ip, RATE, now);
                    if !held.is_empty() && (held.len() > 5 || i % 3 == 0) {
                        held.swap_remove((i as usize) % held.len().max(1));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().is_ok(), "a thread panicked");
    }
    for &ip in addresses.iter() {
        assert_eq!(table.tunnels(ip), 0, "{ip}");
    }
    assert_eq!(table.len(), 4, "the mapped addresses are the IPv4 ones");
}
