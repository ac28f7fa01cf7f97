//! Durations ("250ms", "30s", "10m", humantime) and sizes ("64KiB", "1MiB", "10KB", "512B", 1024).

use std::time::Duration;

use super::raw::RawSize;

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim()).map_err(|e| {
        format!("{text:?} is not a duration ({e}); use e.g. \"250ms\", \"30s\", \"10m\"")
    })?;
    if duration.is_zero() {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(duration)
}

/// Binary units (KiB, MiB, GiB) are powers of 1024, decimal ones (KB, MB, GB) powers of 1000.
pub fn parse_size(size: &RawSize) -> Result<u64, String> {
    let bytes = match size {
        RawSize::Bytes(n) => *n,
        RawSize::Text(text) => {
            let t = text.trim();
            let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (number, unit) = t.split_at(split);
            let number: u64 = number.parse().map_err(|_| {
                format!("{text:?} is not a size; use e.g. \"64KiB\", \"1MiB\" or a byte count")
            })?;
            let multiplier: u64 = match unit.trim() {
                "" | "B" => 1,
                "KiB" => 1 << 10,
                "MiB" => 1 << 20,
                "GiB" => 1 << 30,
                "KB" => 1_000,
                "MB" => 1_000_000,
                "GB" => 1_000_000_000,
                other => {
                    return Err(format!(
                        "{text:?}: unknown unit {other:?} (B, KiB, MiB, GiB, KB, MB, GB)"
                    ))
                }
            };
            number
                .checked_mul(multiplier)
                .ok_or_else(|| format!("{text:?} is too large"))?
        }
    };
    if bytes == 0 {
        return Err("must be more than zero bytes".to_owned());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> RawSize {
        RawSize::Text(s.to_owned())
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(&RawSize::Bytes(1024)), Ok(1024));
        assert_eq!(parse_size(&text("1024")), Ok(1024));
        assert_eq!(parse_size(&text("512B")), Ok(512));
        assert_eq!(parse_size(&text("64KiB")), Ok(65536));
        assert_eq!(parse_size(&text("1MiB")), Ok(1 << 20));
        assert_eq!(parse_size(&text("2 GiB")), Ok(2 << 30));
        assert_eq!(parse_size(&text("10KB")), Ok(10_000));
        assert_eq!(parse_size(&text("3MB")), Ok(3_000_000));
        assert_eq!(parse_size(&text("1GB")), Ok(1_000_000_000));
        assert!(parse_size(&text("1mib")).is_err());
        assert!(parse_size(&text("MiB")).is_err());
        assert!(parse_size(&text("-1")).is_err());
        assert!(parse_size(&RawSize::Bytes(0)).is_err());
        assert!(parse_size(&text("99999999999999999999GiB")).is_err());
    }
}
