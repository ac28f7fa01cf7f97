//! A live tunnel as JSON (`GET /tunnels`), and a tapped frame as one JSON line.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use wsgate_proto::frame::OpCode;
use wsgate_proto::tracker::Sender;

use crate::relay::tap::TapFrame;
use crate::relay::{LiveTunnel, Snapshot, Traffic};

#[derive(Serialize)]
pub struct TunnelView<'a> {
    id: u64,
    route: &'a str,
    listener: &'a str,
    client: String,
    upstream: &'a str,
    endpoint: &'a str,
    transport: &'static str,
    subprotocol: Option<&'a str>,
    extensions: Option<&'a str>,
    subject: Option<&'a str>,
    started: String,
    age_ms: u64,
    state: &'static str,
    from_client: Traffic,
    from_upstream: Traffic,
    last_data: String,
    idle_ms: u64,
    pings_answered: u64,
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// The tunnel as `/tunnels` shows it.
pub fn view<'a>(tunnel: &'a LiveTunnel, snapshot: &Snapshot) -> TunnelView<'a> {
    let info = &tunnel.info;
    let started = SystemTime::now() - snapshot.age;
    TunnelView {
        id: info.id,
        route: &info.route,
        listener: &info.listener,
        client: info.client.to_string(),
        upstream: &info.upstream,
        endpoint: &info.endpoint,
        transport: info.transport.label(),
        subprotocol: info.subprotocol.as_deref(),
        extensions: info.extensions.as_deref(),
        subject: info.subject.as_deref(),
        started: rfc3339(started),
        age_ms: ms(snapshot.age),
        state: snapshot.state.label(),
        from_client: snapshot.from_client,
        from_upstream: snapshot.from_upstream,
        last_data: rfc3339(started + snapshot.last_data),
        idle_ms: ms(snapshot.age.saturating_sub(snapshot.last_data)),
        pings_answered: snapshot.pings_answered,
    }
}

/// One line of a tap's stream.
#[derive(Serialize)]
#[serde(untagged)]
pub enum TapLine<'a> {
    Frame(FrameLine<'a>),
    Dropped { dropped: u64 },
    End { end: &'static str },
}

#[derive(Serialize)]
pub struct FrameLine<'a> {
    direction: &'static str,
    opcode: &'static str,
    fin: bool,
    rsv1: bool,
    rsv2: bool,
    rsv3: bool,
    masked: bool,
    length: u64,
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_hex: Option<String>,
}

/// A tapped frame with at most `payload` bytes of its payload (0: none): as text when it is a
/// text frame, not compressed, whose bytes are UTF-8 (a character cut at the end is left out),
/// else as hex.
pub fn tap_line(frame: &TapFrame, started: SystemTime, payload: usize) -> TapLine<'_> {
    let h = &frame.header;
    let bytes = &frame.payload[..frame.payload.len().min(payload)];
    let compressed = h.rsv & 0b100 != 0;
    let text = (h.opcode == OpCode::Text && !compressed)
        .then(|| match std::str::from_utf8(bytes) {
            Ok(text) => Some(text),
            // Cut inside a character: the part before it.
            Err(e) if e.error_len().is_none() => {
                std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()
            }
            Err(_) => None,
        })
        .flatten();
    let (payload, payload_hex) = match (payload, text) {
        (0, _) => (None, None),
        (_, Some(text)) => (Some(text), None),
        (_, None) => (None, Some(hex(bytes))),
    };
    TapLine::Frame(FrameLine {
        direction: match frame.sender {
            Sender::Client => "client",
            Sender::Upstream => "upstream",
        },
        // The same names as the `opcode` metric label.
        opcode: h.opcode.label(),
        fin: h.fin,
        rsv1: h.rsv & 0b100 != 0,
        rsv2: h.rsv & 0b010 != 0,
        rsv3: h.rsv & 0b001 != 0,
        masked: h.mask.is_some(),
        length: h.payload_len,
        time: rfc3339(started + Duration::from_millis(frame.at_ms)),
        payload,
        payload_hex,
    })
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsgate_proto::frame::FrameHeader;

    fn frame(opcode: OpCode, rsv: u8, payload: &[u8]) -> TapFrame {
        TapFrame {
            sender: Sender::Client,
            header: FrameHeader {
                fin: true,
                rsv,
                opcode,
                mask: Some([1, 2, 3, 4]),
                payload_len: payload.len() as u64,
            },
            at_ms: 1500,
            payload: payload.into(),
        }
    }

    fn line(frame: &TapFrame, payload: usize) -> serde_json::Value {
        let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        serde_json::to_value(tap_line(frame, started, payload)).unwrap()
    }

    #[test]
    fn a_frame_line_says_its_header_and_time() {
        let v = line(&frame(OpCode::Text, 0, b"hello"), 0);
        assert_eq!(v["direction"], "client");
        assert_eq!(v["opcode"], "text");
        assert_eq!(v["fin"], true);
        assert_eq!(v["rsv1"], false);
        assert_eq!(v["masked"], true);
        assert_eq!(v["length"], 5);
        assert_eq!(v["time"], "2023-11-14T22:13:21.500Z");
        assert!(v.get("payload").is_none() && v.get("payload_hex").is_none());
    }

    #[test]
    fn payloads_as_text_or_hex_cut_to_the_asked_length() {
        assert_eq!(line(&frame(OpCode::Text, 0, b"hello"), 3)["payload"], "hel");
        // "é" is two bytes: cut inside it, the text stops before it.
        assert_eq!(
            line(&frame(OpCode::Text, 0, "aé".as_bytes()), 2)["payload"],
            "a"
        );
        assert_eq!(
            line(&frame(OpCode::Binary, 0, &[0, 255, 16]), 10)["payload_hex"],
            "00ff10"
        );
        let compressed = line(&frame(OpCode::Text, 0b100, b"ab"), 10);
        assert_eq!(compressed["payload_hex"], "6162");
        assert_eq!(compressed["rsv1"], true);
        assert_eq!(
            line(&frame(OpCode::Text, 0, &[0xff]), 10)["payload_hex"],
            "ff"
        );
    }

    #[test]
    fn dropped_and_end_lines() {
        let v = serde_json::to_value(TapLine::Dropped { dropped: 12 }).unwrap();
        assert_eq!(v, serde_json::json!({"dropped": 12}));
        let v = serde_json::to_value(TapLine::End { end: "limit" }).unwrap();
        assert_eq!(v, serde_json::json!({"end": "limit"}));
    }
}
