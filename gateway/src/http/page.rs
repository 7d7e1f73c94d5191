//! The one list shape of the public API: `{"items": [...], "nextCursor": "<opaque>" | null}`,
//! paged with `?cursor=` (the previous page's `nextCursor`) and `?limit=`.
//!
//! Cursors are opaque to clients (base64url text the gateway alone reads), so how a list is
//! paged can change without breaking them:
//!
//! * lists that can grow without bound (calls, audit log, campaign results, the do-not-call
//!   list, webhook deliveries) are paged in SQL by key (keyset paging: a new row never shifts
//!   a page the client is reading);
//! * lists bounded by the tenant's size or plan (tenants, members, invitations, API keys,
//!   credentials, numbers, webhook endpoints) are read whole and paged in memory by position
//!   ([`Page::of_all`]).
//!
//! `nextCursor` is `null` on the last page; a `limit` outside the list's range is refused
//! (422, field `limit`) rather than clamped, and so is a cursor the gateway did not issue
//! (422 `invalid_cursor`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::errors::ApiError;

/// Default page size of most lists.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page of most lists.
pub const MAX_LIMIT: i64 = 200;

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// This page's items, in the list's order.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from rows fetched with [`PageQuery::fetch_limit`] (one more than the page
    /// size): when the extra row came back there is a next page, which continues after the
    /// key of this page's last item.
    pub fn from_fetched(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Self {
        let size = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > size;
        rows.truncate(size);
        let next_cursor = if more {
            rows.last().map(|last| encode_cursor(&key(last)))
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }

    /// A page of a bounded list read whole, paged by position (default page size and range).
    pub fn of_all(all: Vec<T>, query: &PageQuery) -> Result<Self, ApiError> {
        Self::of_all_sized(all, query, DEFAULT_LIMIT, MAX_LIMIT)
    }

    /// [`Page::of_all`] with the list's own default and largest page size.
    pub fn of_all_sized(
        all: Vec<T>,
        query: &PageQuery,
        default: i64,
        max: i64,
    ) -> Result<Self, ApiError> {
        let limit = query.limit(default, max)?;
        let start = match query.cursor()? {
            None => 0,
            Some(text) => text
                .strip_prefix("o:")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(invalid_cursor)?,
        };
        let size = usize::try_from(limit).unwrap_or(usize::MAX);
        let total = all.len();
        let items: Vec<T> = all.into_iter().skip(start).take(size).collect();
        let end = start.saturating_add(items.len());
        let next_cursor = (end < total).then(|| encode_cursor(&format!("o:{end}")));
        Ok(Self { items, next_cursor })
    }

    /// The same page with each item converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }

    /// A single page holding every item (for lists the client cannot page further).
    pub fn whole(items: Vec<T>) -> Self {
        Self {
            items,
            next_cursor: None,
        }
    }
}

/// `?cursor=&limit=` of a list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    /// The previous page's `nextCursor` (absent: the first page).
    pub cursor: Option<String>,
    /// Items per page (1–200 unless the list says otherwise; default 50).
    pub limit: Option<i64>,
}

impl PageQuery {
    /// The page size: `default` when absent, 422 when outside `1..=max`.
    pub fn limit(&self, default: i64, max: i64) -> Result<i64, ApiError> {
        let limit = self.limit.unwrap_or(default);
        if (1..=max).contains(&limit) {
            Ok(limit)
        } else {
            Err(ApiError::invalid(
                "limit",
                "out_of_range",
                format!("limit must be between 1 and {max}"),
            ))
        }
    }

    /// Rows to fetch for a page of `limit`: one more, to learn whether a next page exists.
    pub fn fetch_limit(limit: i64) -> i64 {
        limit.saturating_add(1)
    }

    /// The decoded cursor, `None` on the first page; 422 for a cursor not issued here.
    pub fn cursor(&self) -> Result<Option<String>, ApiError> {
        self.cursor.as_deref().map(decode_cursor).transpose()
    }
}

/// Wraps a position key into an opaque cursor.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// Reads a cursor made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid_cursor())?;
    String::from_utf8(bytes).map_err(|_| invalid_cursor())
}

/// A key of two parts, `<number>:<text>` (e.g. a time and an id), for keyset paging.
pub fn split_key(key: &str) -> Result<(i64, String), ApiError> {
    let (number, text) = key.split_once(':').ok_or_else(invalid_cursor)?;
    Ok((
        number.parse().map_err(|_| invalid_cursor())?,
        text.to_owned(),
    ))
}

/// 422 `invalid_cursor`.
pub fn invalid_cursor() -> ApiError {
    ApiError::invalid("cursor", "invalid_cursor", "cursor is not valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(cursor: Option<&str>, limit: Option<i64>) -> PageQuery {
        PageQuery {
            cursor: cursor.map(str::to_owned),
            limit,
        }
    }

    #[test]
    fn in_memory_pages_cover_the_list_once_and_end_with_null() {
        let all: Vec<i32> = (0..5).collect();
        let first = Page::of_all(all.clone(), &query(None, Some(2))).unwrap();
        assert_eq!(first.items, vec![0, 1]);
        let second =
            Page::of_all(all.clone(), &query(first.next_cursor.as_deref(), Some(2))).unwrap();
        assert_eq!(second.items, vec![2, 3]);
        let last =
            Page::of_all(all.clone(), &query(second.next_cursor.as_deref(), Some(2))).unwrap();
        assert_eq!(last.items, vec![4]);
        assert_eq!(last.next_cursor, None);
        let exact = Page::of_all(vec![1, 2], &query(None, Some(2))).unwrap();
        assert_eq!(exact.next_cursor, None, "no empty trailing page");
    }

    #[test]
    fn fetched_pages_continue_after_the_last_key() {
        let page = Page::from_fetched(vec!["a", "b", "c"], 2, |s| (*s).to_owned());
        assert_eq!(page.items, vec!["a", "b"]);
        assert_eq!(
            decode_cursor(page.next_cursor.as_deref().unwrap()).unwrap(),
            "b"
        );
        let last = Page::from_fetched(vec!["a", "b"], 2, |s| (*s).to_owned());
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn bad_limits_and_cursors_are_refused_naming_the_field() {
        assert_eq!(
            query(None, Some(0))
                .limit(50, 200)
                .unwrap_err()
                .field
                .as_deref(),
            Some("limit")
        );
        assert_eq!(
            query(None, Some(201)).limit(50, 200).unwrap_err().code,
            "out_of_range"
        );
        assert_eq!(query(None, None).limit(50, 200).unwrap(), 50);
        let error = Page::of_all(vec![1], &query(Some("!!"), None)).unwrap_err();
        assert_eq!(error.code, "invalid_cursor");
        let foreign = encode_cursor("1700000000000:abc");
        assert!(Page::of_all(vec![1], &query(Some(&foreign), None)).is_err());
        assert_eq!(split_key("12:ab").unwrap(), (12, "ab".to_owned()));
        assert!(split_key("x:ab").is_err());
    }

    #[test]
    fn the_envelope_is_items_and_next_cursor_even_when_null() {
        let json = serde_json::to_value(Page::whole(vec![1])).unwrap();
        assert_eq!(json, serde_json::json!({"items": [1], "nextCursor": null}));
    }
}
