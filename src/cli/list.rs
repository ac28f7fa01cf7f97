//! `wsgate tunnels`: the list as a table, sorted here (the server filters).

use serde::Deserialize;

use super::format::{duration_ms, size};
use super::table::{render, Align};

/// How the list is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Sort {
    /// Oldest first.
    Age,
    /// Most bytes (both ways) first.
    Bytes,
}

/// The fields of a tunnel object the table shows; the rest are ignored.
#[derive(Debug, Deserialize)]
pub struct Row {
    pub id: u64,
    #[serde(default)]
    pub route: String,
    #[serde(default)]
    pub client: String,
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    pub age_ms: u64,
    #[serde(default)]
    pub idle_ms: u64,
    #[serde(default)]
    pub from_client: Direction,
    #[serde(default)]
    pub from_upstream: Direction,
}

#[derive(Debug, Default, Deserialize)]
pub struct Direction {
    #[serde(default)]
    pub bytes: u64,
}

impl Row {
    fn total_bytes(&self) -> u64 {
        self.from_client
            .bytes
            .saturating_add(self.from_upstream.bytes)
    }
}

/// Sorts `rows`; ties go to the lower (older) id so the order is stable between runs.
pub fn sort(rows: &mut [Row], by: Sort) {
    match by {
        Sort::Age => rows.sort_by(|a, b| b.age_ms.cmp(&a.age_ms).then(a.id.cmp(&b.id))),
        Sort::Bytes => {
            rows.sort_by(|a, b| b.total_bytes().cmp(&a.total_bytes()).then(a.id.cmp(&b.id)))
        }
    }
}

/// The table's lines, or the one "no tunnels" line.
pub fn lines(rows: &[Row]) -> Vec<String> {
    if rows.is_empty() {
        return vec!["no tunnels".to_owned()];
    }
    let columns = [
        ("ID", Align::Right),
        ("ROUTE", Align::Left),
        ("CLIENT", Align::Left),
        ("ENDPOINT", Align::Left),
        ("AGE", Align::Right),
        ("IN", Align::Right),
        ("OUT", Align::Right),
        ("IDLE", Align::Right),
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.route.clone(),
                r.client.clone(),
                r.endpoint.clone(),
                duration_ms(r.age_ms),
                size(r.from_client.bytes),
                size(r.from_upstream.bytes),
                duration_ms(r.idle_ms),
            ]
        })
        .collect();
    render(&columns, &cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64, age_ms: u64, bytes_in: u64, bytes_out: u64) -> Row {
        Row {
            id,
            route: "chat".into(),
            client: "127.0.0.1:5000".into(),
            endpoint: "127.0.0.1:9001".into(),
            age_ms,
            idle_ms: 120,
            from_client: Direction { bytes: bytes_in },
            from_upstream: Direction { bytes: bytes_out },
        }
    }

    fn ids(rows: &[Row]) -> Vec<u64> {
        rows.iter().map(|r| r.id).collect()
    }

    #[test]
    fn age_puts_the_oldest_first_and_bytes_the_busiest() {
        let mut rows = vec![row(1, 10, 5, 5), row(2, 90_000, 0, 1), row(3, 10, 4000, 0)];
        sort(&mut rows, Sort::Age);
        assert_eq!(ids(&rows), [2, 1, 3]);
        sort(&mut rows, Sort::Bytes);
        assert_eq!(ids(&rows), [3, 1, 2]);
    }

    #[test]
    fn the_table_shows_human_units() {
        let rows = vec![row(17, 312_000, 1229, 15)];
        assert_eq!(
            lines(&rows),
            [
                "ID  ROUTE  CLIENT          ENDPOINT          AGE      IN  OUT   IDLE",
                "17  chat   127.0.0.1:5000  127.0.0.1:9001  5m12s  1.2KiB  15B  120ms",
            ]
        );
    }

    #[test]
    fn an_empty_list_says_so() {
        assert_eq!(lines(&[]), ["no tunnels"]);
    }

    #[test]
    fn rows_read_the_api_object() {
        let json = r#"{"id": 17, "route": "chat", "client": "127.0.0.1:53422",
            "endpoint": "127.0.0.1:9001", "age_ms": 5012, "idle_ms": 120, "state": "open",
            "from_client": {"frames": 3, "messages": 3, "bytes": 15},
            "from_upstream": {"frames": 1, "messages": 1, "bytes": 4}}"#;
        let row: Row = serde_json::from_str(json).unwrap();
        assert_eq!((row.id, row.total_bytes()), (17, 19));
    }
}
