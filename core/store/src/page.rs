//! Cursor pagination: pages are ordered by id; the cursor is the last id seen, opaque to
//! callers (`c` + base-10 id), so a page never skips or repeats rows inserted meanwhile.

use serde::Serialize;

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub after_id: i64,
}

impl Cursor {
    pub fn encode(self) -> String {
        format!("c{}", self.after_id)
    }

    /// What every cursor this API returns looks like (ids stay below 10^18), for the
    /// `cursor` parameter's schema; [`Cursor::decode`] takes all of it.
    pub const PATTERN: &str = "^c[0-9]{1,18}$";

    /// The `cursor` parameter's schema.
    pub fn schema() -> utoipa::openapi::Object {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some(Cursor::PATTERN))
            .description(Some("The `next_cursor` of the previous page."))
            .build()
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let digits = text.strip_prefix('c')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(|after_id| Cursor { after_id })
    }
}

/// A page of items and the cursor of the next one, if any.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only says another page exists.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, id: impl Fn(&T) -> i64) -> Page<T> {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| Cursor { after_id: id(r) }.encode())
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        assert_eq!(
            Cursor::decode(&Cursor { after_id: 42 }.encode()),
            Some(Cursor { after_id: 42 })
        );
        for bad in ["", "c", "42", "c-1", "cx", "c1.5", "c99999999999999999999"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_page_built_from_one_extra_row_has_a_next_cursor() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |x| *x);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_cursor.as_deref(), Some("c2"));
        let last = Page::from_rows(vec![1, 2], 2, |x| *x);
        assert_eq!(last.next_cursor, None);
    }
}
