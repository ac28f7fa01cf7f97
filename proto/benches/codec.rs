//! The codec alone, no sockets: the tracker walking a buffer of frames as a pump does (header
//! parse, every rule, and for text an unmask, UTF-8 check and re-mask). A regression here shows
//! before the end-to-end run of `scripts/bench.sh`.
//!
//!   cargo bench --bench codec
//!
//! Each size is measured twice: payload MB/s and frames/s.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
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

/// `count` frames of `size` bytes: masked text from a client, or unmasked binary from an upstream.
fn frames(sender: Sender, size: usize, count: usize) -> Vec<u8> {
    let (opcode, payload) = match sender {
        Sender::Client => (OpCode::Text, text_payload(size)),
        Sender::Upstream => (OpCode::Binary, vec![0xA5; size]),
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

fn limits() -> Limits {
    Limits {
        max_frame_size: 1 << 20,
        max_message_size: 16 << 20,
        validate_utf8: true,
        answer_pings: true,
        compression: None,
        remask: None,
    }
}

/// Walks every frame in `buf`; returns how many passed.
fn walk(sender: Sender, buf: &mut [u8]) -> usize {
    let mut tracker = Tracker::new(sender, limits());
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
    for (sender, kind) in [
        (Sender::Client, "client_text"),
        (Sender::Upstream, "upstream_binary"),
    ] {
        for (size, label) in SIZES {
            let count = (BATCH_BYTES / size).max(16);
            let mut buf = frames(sender, size, count);
            assert_eq!(walk(sender, &mut buf), count);
            for (unit, throughput) in [
                ("bytes", Throughput::Bytes((count * size) as u64)),
                ("frames", Throughput::Elements(count as u64)),
            ] {
                let mut group = c.benchmark_group(format!("codec/{kind}/{unit}"));
                group.throughput(throughput);
                group.bench_function(BenchmarkId::from_parameter(label), |b| {
                    b.iter(|| walk(sender, &mut buf))
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
