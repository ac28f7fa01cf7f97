//! `wsgate tunnels tap`: each NDJSON line of the tap as one readable line.

use serde_json::Value;

/// A rendered tap line; `End` is the stream's last.
#[derive(Debug, PartialEq, Eq)]
pub enum TapLine {
    Show(String),
    End(String),
}

/// One line of the stream: a frame, a drop count, or the end. Anything else is shown as it came.
pub fn render(line: &str) -> TapLine {
    let Ok(Value::Object(v)) = serde_json::from_str::<Value>(line) else {
        return TapLine::Show(line.to_owned());
    };
    if let Some(end) = v.get("end") {
        let why = match end.as_str() {
            Some("limit") => "the frame limit was reached".to_owned(),
            Some("closed") => "the tunnel closed".to_owned(),
            Some(other) => other.to_owned(),
            None => end.to_string(),
        };
        return TapLine::End(format!("end: {why}"));
    }
    if let Some(n) = v.get("dropped") {
        return TapLine::Show(format!("dropped {n} lines"));
    }
    let text = |key: &str| v.get(key).and_then(Value::as_str).unwrap_or("?");
    let flag = |key: &str| v.get(key).and_then(Value::as_bool).unwrap_or(false);
    let direction = text("direction");
    let arrow = if direction == "upstream" { "<-" } else { "->" };
    let mut parts = vec![
        clock(text("time")).to_owned(),
        direction.to_owned(),
        arrow.to_owned(),
        text("opcode").to_owned(),
    ];
    for name in ["fin", "rsv1", "rsv2", "rsv3"] {
        if flag(name) {
            parts.push(name.to_owned());
        }
    }
    // Masking is shown only where it is not what RFC 6455 asks of that side.
    match (direction, flag("masked")) {
        ("client", false) => parts.push("unmasked".to_owned()),
        ("upstream", true) => parts.push("masked".to_owned()),
        _ => {}
    }
    let length = v.get("length").and_then(Value::as_u64).unwrap_or(0);
    parts.push(format!("len={length}"));
    if let Some(payload) = payload(&v, length) {
        parts.push(payload);
    }
    TapLine::Show(parts.join(" "))
}

/// `"text"` (escaped, so control bytes cannot reach the terminal) or `hex=..`; `...` when cut.
fn payload(v: &serde_json::Map<String, Value>, length: u64) -> Option<String> {
    let cut = |shown: usize| {
        if (shown as u64) < length {
            "..."
        } else {
            ""
        }
    };
    if let Some(text) = v.get("payload").and_then(Value::as_str) {
        return Some(format!("{text:?}{}", cut(text.len())));
    }
    let hex = v.get("payload_hex").and_then(Value::as_str)?;
    Some(format!("hex={hex}{}", cut(hex.len() / 2)))
}

/// `19:05:06.001` of `2026-12-02T19:05:06.001Z`; other text as it is.
fn clock(time: &str) -> &str {
    time.split_once('T')
        .map_or(time, |(_, clock)| clock.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(line: &str) -> String {
        match render(line) {
            TapLine::Show(text) => text,
            end => panic!("{end:?}"),
        }
    }

    #[test]
    fn a_client_text_frame() {
        let line = r#"{"direction":"client","opcode":"text","fin":true,"rsv1":false,"rsv2":false,
            "rsv3":false,"masked":true,"length":5,"time":"2026-12-02T19:05:06.001Z","payload":"hello"}"#;
        assert_eq!(
            show(&line.replace('\n', "")),
            r#"19:05:06.001 client -> text fin len=5 "hello""#
        );
    }

    #[test]
    fn an_upstream_binary_fragment_cut_in_hex() {
        let line = r#"{"direction":"upstream","opcode":"binary","fin":false,"rsv1":true,"masked":false,"length":300,"time":"2026-12-02T19:05:07.250Z","payload_hex":"00ff"}"#;
        assert_eq!(
            show(line),
            "19:05:07.250 upstream <- binary rsv1 len=300 hex=00ff..."
        );
    }

    #[test]
    fn odd_masking_and_control_bytes_show() {
        let line = r#"{"direction":"client","opcode":"text","fin":true,"masked":false,"length":3,"time":"t","payload":"a\u001bb"}"#;
        assert_eq!(
            show(line),
            r#"t client -> text fin unmasked len=3 "a\u{1b}b""#
        );
        let line = r#"{"direction":"upstream","opcode":"ping","fin":true,"masked":true,"length":0,"time":"t"}"#;
        assert_eq!(show(line), "t upstream <- ping fin masked len=0");
    }

    #[test]
    fn drops_ends_and_strangers() {
        assert_eq!(show(r#"{"dropped": 12}"#), "dropped 12 lines");
        assert_eq!(
            render(r#"{"end":"limit"}"#),
            TapLine::End("end: the frame limit was reached".into())
        );
        assert_eq!(
            render(r#"{"end":"closed"}"#),
            TapLine::End("end: the tunnel closed".into())
        );
        assert_eq!(show("not json"), "not json");
    }
}
