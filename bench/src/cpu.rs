//! The load tool's own CPU time, from `/proc/self/stat`: a run whose tool was busy for all of its
//! window measured the tool, not the target.

/// User plus system CPU seconds of this process (all threads) so far; `None` off Linux.
pub fn seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat(&stat)
}

/// Fields 14 and 15 (utime, stime) of a `stat` line, in clock ticks of 1/100 s (Linux's USER_HZ).
/// The command name (field 2) may hold spaces, so fields count from its closing parenthesis.
fn parse_stat(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// `,"tool_cpu_s":1.23` for the CPU spent since `since`, or nothing when it cannot be read.
pub fn json_field(since: Option<f64>) -> String {
    match (since, seconds()) {
        (Some(a), Some(b)) => format!(r#","tool_cpu_s":{:.2}"#, b - a),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_command_names_end() {
        let stat = "4242 (wsgate bench) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 1 0";
        assert_eq!(parse_stat(stat), Some(3.25));
        assert_eq!(parse_stat("garbage"), None);
        assert!(seconds().is_some());
    }
}
