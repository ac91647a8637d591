//! Keyset pagination shared by every list: opaque cursors over `(sort key, id)`, never OFFSET,
//! so pages stay stable while rows are inserted.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, EntityTrait, FromQueryResult, Order, QueryFilter, QueryOrder, QuerySelect, Select,
    sea_query::{Expr, ExprTrait, SimpleExpr},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    config::Limits,
    error::{AppError, AppResult},
};

/// Relay arguments as the client sent them.
#[derive(Debug, Clone, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

impl PageArgs {
    pub fn first(n: i32) -> Self {
        Self { first: Some(n), ..Self::default() }
    }
}

/// Validated arguments: how many rows, which way, from where.
#[derive(Debug, Clone, PartialEq)]
pub struct PageWindow {
    pub limit: u64,
    pub backward: bool,
    pub cursor: Option<Cursor>,
}

impl PageArgs {
    pub fn window(&self, limits: &Limits) -> AppResult<PageWindow> {
        if self.first.is_some() && self.last.is_some() {
            return Err(AppError::bad_field("first", "pass either `first` or `last`, not both"));
        }
        if self.after.is_some() && self.before.is_some() {
            return Err(AppError::bad_field("after", "pass either `after` or `before`, not both"));
        }
        let size = |field: &str, n: i32| -> AppResult<u64> {
            if n < 0 {
                return Err(AppError::bad_field(field, format!("`{field}` must not be negative")));
            }
            let n = n as u64;
            if n > limits.max_page_size {
                return Err(AppError::bad_field(field, format!("`{field}` may be at most {}", limits.max_page_size)));
            }
            Ok(n)
        };
        let backward = self.last.is_some() || (self.before.is_some() && self.first.is_none());
        let limit = match (self.first, self.last) {
            (Some(n), _) => size("first", n)?,
            (_, Some(n)) => size("last", n)?,
            _ => limits.default_page_size,
        };
        let cursor = match (&self.after, &self.before) {
            (Some(c), _) => Some(Cursor::decode(c).ok_or_else(|| AppError::bad_field("after", "invalid cursor"))?),
            (_, Some(c)) => Some(Cursor::decode(c).ok_or_else(|| AppError::bad_field("before", "invalid cursor"))?),
            _ => None,
        };
        if backward && self.after.is_some() {
            return Err(AppError::bad_field("last", "`last` goes with `before`, not `after`"));
        }
        if !backward && self.before.is_some() {
            return Err(AppError::bad_field("first", "`first` goes with `after`, not `before`"));
        }
        Ok(PageWindow { limit, backward, cursor })
    }
}

impl PageWindow {
    /// The `(time, id)` a cursor of a time-ordered list points at; a cursor issued by a list
    /// sorted on something else is refused rather than compared against the wrong column.
    pub fn time_position(&self) -> AppResult<Option<(DateTime<Utc>, Uuid)>> {
        match &self.cursor {
            None => Ok(None),
            Some(Cursor { key: SortValue::Time(t), id }) => Ok(Some((*t, *id))),
            Some(_) => {
                let field = if self.backward { "before" } else { "after" };
                Err(AppError::bad_field(field, "invalid cursor"))
            }
        }
    }
}

/// The value of the sort key in a cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SortValue {
    #[serde(rename = "s")]
    Text(String),
    #[serde(rename = "t")]
    Time(DateTime<Utc>),
    #[serde(rename = "i")]
    Int(i64),
}

impl From<SortValue> for sea_orm::Value {
    fn from(value: SortValue) -> Self {
        match value {
            SortValue::Text(s) => s.into(),
            SortValue::Time(t) => t.into(),
            SortValue::Int(i) => i.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "k")]
    pub key: SortValue,
    #[serde(rename = "id")]
    pub id: Uuid,
}

impl Cursor {
    pub fn new(key: SortValue, id: Uuid) -> Self {
        Self { key, id }
    }

    pub fn encode(&self) -> String {
        // Serialising these plain types cannot fail; an empty cursor would only fail to decode.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// `None` for anything that is not a cursor we issued.
    pub fn decode(raw: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDirection {
    Asc,
    Desc,
}

impl SortDirection {
    fn reversed(self) -> Self {
        match self {
            SortDirection::Asc => SortDirection::Desc,
            SortDirection::Desc => SortDirection::Asc,
        }
    }

    fn order(self) -> Order {
        match self {
            SortDirection::Asc => Order::Asc,
            SortDirection::Desc => Order::Desc,
        }
    }
}

/// One page of rows in display order, each with its cursor.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<(Cursor, T)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl<T> Page<T> {
    pub fn empty() -> Self {
        Self { items: Vec::new(), has_next_page: false, has_previous_page: false }
    }

    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(|(c, t)| (c, f(t))).collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
        }
    }
}

/// How a list is ordered: a key expression (a column, or e.g. `COALESCE(name, '')` so NULLs
/// never break the keyset) and the id column as tie-breaker.
#[derive(Debug, Clone)]
pub struct Keyset {
    pub key: SimpleExpr,
    pub id: SimpleExpr,
    pub direction: SortDirection,
}

impl Keyset {
    pub fn new(key: impl Into<SimpleExpr>, id: impl Into<SimpleExpr>, direction: SortDirection) -> Self {
        Self { key: key.into(), id: id.into(), direction }
    }

    /// Apply cursor condition, order and limit (one extra row to learn whether more exist).
    pub fn apply<E: EntityTrait>(&self, select: Select<E>, window: &PageWindow) -> Select<E> {
        let direction = if window.backward { self.direction.reversed() } else { self.direction };
        let mut select = select;
        if let Some(cursor) = &window.cursor {
            let value: sea_orm::Value = cursor.key.clone().into();
            let key = Expr::expr(self.key.clone());
            let id = Expr::expr(self.id.clone());
            let condition = match direction {
                SortDirection::Asc => key.clone().gt(value.clone()).or(key.eq(value).and(id.gt(cursor.id))),
                SortDirection::Desc => key.clone().lt(value.clone()).or(key.eq(value).and(id.lt(cursor.id))),
            };
            select = select.filter(condition);
        }
        select
            .order_by(self.key.clone(), direction.order())
            .order_by(self.id.clone(), direction.order())
            .limit(window.limit + 1)
    }

    /// Turn the fetched rows (at most `limit + 1`) into a page in display order.
    pub fn finish<T>(&self, mut rows: Vec<T>, window: &PageWindow, cursor_of: impl Fn(&T) -> Cursor) -> Page<T> {
        let has_more = rows.len() as u64 > window.limit;
        rows.truncate(window.limit as usize);
        if window.backward {
            rows.reverse();
        }
        let items = rows.into_iter().map(|row| (cursor_of(&row), row)).collect();
        let from_cursor = window.cursor.is_some();
        if window.backward {
            Page { items, has_next_page: from_cursor, has_previous_page: has_more }
        } else {
            Page { items, has_next_page: has_more, has_previous_page: from_cursor }
        }
    }

    /// Fetch one page of `select` ordered by this keyset.
    pub async fn fetch<E, C>(
        &self,
        db: &C,
        select: Select<E>,
        window: &PageWindow,
        cursor_of: impl Fn(&E::Model) -> Cursor,
    ) -> AppResult<Page<E::Model>>
    where
        E: EntityTrait,
        E::Model: FromQueryResult + Send + Sync,
        C: ConnectionTrait,
    {
        if window.limit == 0 {
            return Ok(Page::empty());
        }
        let rows = self.apply(select, window).all(db).await?;
        Ok(self.finish(rows, window, cursor_of))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor::new(SortValue::Text("Ada".into()), Uuid::now_v7());
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert!(Cursor::decode("not a cursor").is_none());
    }

    #[test]
    fn page_sizes_are_capped() {
        let limits = Limits::default();
        assert!(PageArgs::first(101).window(&limits).is_err());
        assert!(PageArgs::first(-1).window(&limits).is_err());
        assert_eq!(PageArgs::default().window(&limits).ok().map(|w| w.limit), Some(limits.default_page_size));
        let both = PageArgs { first: Some(1), last: Some(1), ..PageArgs::default() };
        assert!(both.window(&limits).is_err());
    }
}
