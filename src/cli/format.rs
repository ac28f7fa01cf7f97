//! Human units (durations, sizes) and `show`'s "key: value" lines.

use serde_json::Value;

/// 120ms, 3s, 5m12s, 2h3m, 4d7h: the two largest units, so a column stays short.
pub fn duration_ms(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    let (days, hours, minutes, seconds) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        format!("{days}d{hours}h")
    } else if hours > 0 {
        format!("{hours}h{minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// 15B, 1.2KiB, 3.4MiB: binary units with one decimal.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    // Display only: the precision f64 loses past 2^53 bytes does not show in one decimal.
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // 1023.95 would print as "1024.0": move up a unit before that.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}

/// The tunnel object's keys in API.md's order; keys the server adds later follow, sorted.
const ORDER: [&str; 21] = [
    "id",
    "route",
    "listener",
    "client",
    "upstream",
    "endpoint",
    "transport",
    "subprotocol",
    "extensions",
    "subject",
    "started",
    "age_ms",
    "state",
    "from_client",
    "from_upstream",
    "last_data",
    "idle_ms",
    "pings_answered",
    "frames",
    "messages",
    "bytes",
];

/// "key: value" lines of a JSON object, nested objects flattened to `outer.inner`.
pub fn key_values(value: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    flatten("", value, &mut lines);
    lines
}

fn flatten(prefix: &str, value: &Value, lines: &mut Vec<String>) {
    let Value::Object(map) = value else {
        lines.push(format!("{prefix}: {}", scalar(prefix, value)));
        return;
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by_key(|k| (ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()), *k));
    for key in keys {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        flatten(&path, &map[key], lines);
    }
}

fn scalar(key: &str, value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_u64() {
            Some(ms) if key.ends_with("_ms") => format!("{ms} ({})", duration_ms(ms)),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            (0, "0ms"),
            (120, "120ms"),
            (3_400, "3s"),
            (59_999, "59s"),
            (312_000, "5m12s"),
            (7_380_000, "2h3m"),
            (3_600_000, "1h0m"),
            (2 * 86_400_000 + 5 * 3_600_000, "2d5h"),
        ];
        for (ms, text) in cases {
            assert_eq!(duration_ms(ms), text, "{ms}");
        }
    }

    #[test]
    fn sizes() {
        let cases = [
            (0, "0B"),
            (1023, "1023B"),
            (1024, "1.0KiB"),
            (1229, "1.2KiB"),
            (1_048_575, "1.0MiB"),
            (3_565_158, "3.4MiB"),
            (u64::MAX, "16.0EiB"),
        ];
        for (bytes, text) in cases {
            assert_eq!(size(bytes), text, "{bytes}");
        }
    }

    #[test]
    fn key_values_follow_the_api_order_and_flatten_directions() {
        let v = serde_json::json!({
            "zeta": true, "route": "chat", "id": 17, "subprotocol": null, "age_ms": 5012,
            "from_client": {"bytes": 15, "frames": 3, "messages": 2},
        });
        assert_eq!(
            key_values(&v),
            [
                "id: 17",
                "route: chat",
                "subprotocol: -",
                "age_ms: 5012 (5s)",
                "from_client.frames: 3",
                "from_client.messages: 2",
                "from_client.bytes: 15",
                "zeta: true",
            ]
        );
    }
}
