//! A plain text table: a header row, columns as wide as their widest cell, numbers right-aligned.

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// The table's lines (no trailing spaces); `columns` names and aligns each column.
pub fn render(columns: &[(&str, Align)], rows: &[Vec<String>]) -> Vec<String> {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            rows.iter()
                .filter_map(|row| row.get(i))
                .map(|cell| cell.chars().count())
                .chain([name.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let header: Vec<String> = columns.iter().map(|(name, _)| (*name).to_owned()).collect();
    std::iter::once(&header)
        .chain(rows)
        .map(|row| {
            let cells: Vec<String> = columns
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, ((_, align), &width))| {
                    let cell = row.get(i).map_or("", String::as_str);
                    match align {
                        Align::Left => format!("{cell:<width$}"),
                        Align::Right => format!("{cell:>width$}"),
                    }
                })
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell() {
        let columns = [("ID", Align::Right), ("NAME", Align::Left)];
        let rows = vec![
            vec!["7".to_owned(), "chat".to_owned()],
            vec!["123".to_owned(), "x".to_owned()],
        ];
        assert_eq!(
            render(&columns, &rows),
            [" ID  NAME", "  7  chat", "123  x"]
        );
    }

    #[test]
    fn a_header_alone_when_there_are_no_rows() {
        assert_eq!(render(&[("A", Align::Left)], &[]), ["A"]);
    }
}
