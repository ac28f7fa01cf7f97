//! The codec alone, no sockets: the tracker walking a buffer of frames as a pump does (header
//! parse, every rule, and for text an unmask, UTF-8 check and re-mask). A regression here shows
//! before the end-to-end run of `scripts/bench.sh`.
//!
//!   cargo bench -p wsgate-proto --bench codec
//!
//! Each size is measured twice: payload MB/s and frames/s. The `_remask` cases re-mask client
//! frames with fresh keys (`websocket.remask: true`): their cost over the plain case.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use wsgate_proto::frame::{encode_header, FrameHeader, OpCode, MAX_HEADER_LEN};
use wsgate_proto::mask::apply_mask;
use wsgate_proto::tracker::{Limits, Sender, Step, Tracker};

const SIZES: [(usize, &str); 3] = [(16, "16B"), (1024, "1KiB"), (64 * 1024, "64KiB")];
/// About this many payload bytes per walk, and at least 16 frames.
const BATCH_BYTES: usize = 1 << 20;
/// The relay's read buffer: frames up to this size are validated whole.
const WHOLE_LIMIT: usize = 32 * 1024;

/// Valid UTF-8 of exactly `size` bytes, with multi-byte characters in it.
fn text_payload(size: usize) -> Vec<u8> {
    let mut payload = Vec::with_capacity(size);
    let pattern = "wsgate ✓ frames é ".as_bytes();
    while payload.len() + pattern.len() <= size {
        payload.extend_from_slice(pattern);
    }
    payload.resize(size, b'a');
    payload
}

/// `count` frames of `size` bytes of `opcode`: masked when a client sends them.
fn frames(sender: Sender, opcode: OpCode, size: usize, count: usize) -> Vec<u8> {
    let payload = match opcode {
        OpCode::Text => text_payload(size),
        _ => vec![0xA5; size],
    };
    let mut out = Vec::with_capacity(count * (size + MAX_HEADER_LEN));
    for i in 0..count {
        let mask =
            (sender == Sender::Client).then(|| (i as u32).wrapping_mul(0x9E37_79B9).to_be_bytes());
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask,
            payload_len: size as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let len = encode_header(&header, &mut head);
        out.extend_from_slice(&head[..len]);
        let start = out.len();
        out.extend_from_slice(&payload);
        if let Some(key) = mask {
            apply_mask(&mut out[start..], key, 0);
        }
    }
    out
}

/// A cheap key sequence, never the same key twice in a row (a frame re-masked with its own key is
/// skipped): the cost measured is the tracker's, not a CSPRNG's.
fn bench_keys() -> [u8; 4] {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(0x9E37_79B9, Ordering::Relaxed).to_be_bytes()
}

fn limits(remask: bool) -> Limits {
    Limits {
        max_frame_size: 1 << 20,
        max_message_size: 16 << 20,
        validate_utf8: true,
        answer_pings: true,
        compression: None,
        remask: remask.then_some(bench_keys as fn() -> [u8; 4]),
    }
}

/// Walks every frame in `buf`; returns how many passed.
fn walk(sender: Sender, remask: bool, buf: &mut [u8]) -> usize {
    let mut tracker = Tracker::new(sender, limits(remask));
    let (mut pos, mut frames) = (0, 0);
    while pos < buf.len() {
        match tracker.step(&mut buf[pos..], WHOLE_LIMIT) {
            Step::Forward { len, done } => {
                pos += len;
                frames += usize::from(done.is_some());
            }
            other => panic!("unexpected step {other:?}"),
        }
    }
    frames
}

fn codec(c: &mut Criterion) {
    for (sender, opcode, remask, kind) in [
        (Sender::Client, OpCode::Text, false, "client_text"),
        (Sender::Client, OpCode::Text, true, "client_text_remask"),
        (Sender::Client, OpCode::Binary, false, "client_binary"),
        (Sender::Client, OpCode::Binary, true, "client_binary_remask"),
        (Sender::Upstream, OpCode::Binary, false, "upstream_binary"),
    ] {
        for (size, label) in SIZES {
            let count = (BATCH_BYTES / size).max(16);
            let mut buf = frames(sender, opcode, size, count);
            assert_eq!(walk(sender, remask, &mut buf), count);
            for (unit, throughput) in [
                ("bytes", Throughput::Bytes((count * size) as u64)),
                ("frames", Throughput::Elements(count as u64)),
            ] {
                let mut group = c.benchmark_group(format!("codec/{kind}/{unit}"));
                group.throughput(throughput);
                group.bench_function(BenchmarkId::from_parameter(label), |b| {
                    b.iter(|| walk(sender, remask, &mut buf))
                });
                group.finish();
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = codec
}
criterion_main!(benches);
