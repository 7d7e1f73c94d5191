//! How commands print: the API's JSON unchanged with `--json`, aligned tables for people.

use serde_json::Value;

use crate::client::Answer;

/// Prints JSON or text.
#[derive(Clone, Copy, Debug)]
pub struct Printer {
    /// `--json`: print the API's body.
    pub json: bool,
}

impl Printer {
    /// Prints `value` as JSON, or `text()` for people.
    pub fn value(&self, value: &Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }

    /// Prints an answer: the gateway's JSON, or `text` of the typed value.
    pub fn answer<T>(&self, answer: &Answer<T>, text: impl FnOnce(&T) -> String) {
        self.value(&answer.json, || text(&answer.value));
    }
}

/// Rows under a header, each column as wide as its widest cell; `(none)` without rows.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return "(none)".to_owned();
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if i == last {
                    (*cell).to_owned()
                } else {
                    format!("{cell:<width$}", width = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    out.extend(
        rows.iter()
            .map(|row| line(row.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// An optional cell: the value or `-`.
pub fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_say_none_when_empty() {
        let text = table(
            &["ID", "NAME"],
            &[
                vec!["a".into(), "first".into()],
                vec!["long-id".into(), "second".into()],
            ],
        );
        assert_eq!(text, "ID       NAME\na        first\nlong-id  second");
        assert_eq!(table(&["ID"], &[]), "(none)");
    }
}
