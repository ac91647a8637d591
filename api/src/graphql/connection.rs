//! Relay connections built from domain pages. `totalCount` is only counted when selected.

use async_graphql::{
    Context, OutputType, SimpleObject,
    connection::{Connection, Edge, EmptyFields},
};

use crate::domain::pagination::Page;

/// Extra fields of every connection.
#[derive(SimpleObject, Debug, Clone, Copy, Default)]
pub struct ConnectionTotals {
    /// Rows matching the filter, across all pages.
    pub total_count: u64,
}

pub type RelayConnection<T> = Connection<String, T, ConnectionTotals, EmptyFields>;

/// Rows a connection returns when neither `first` nor `last` is given (the default page size).
const DEFAULT_ROWS: i32 = 20;
/// The largest page counted (the default `RAPPORT_MAX_PAGE_SIZE`; a larger page is refused when
/// resolved, with BAD_USER_INPUT naming the argument).
const MAX_ROWS: i32 = 100;

/// Complexity of a connection field: its selection counted once per row it may return, so a
/// page of patrons each with a page of interactions costs what it fetches. Without it, nested
/// pages multiply (100 × 100 rows for a complexity of ten), and aliases and batches multiply that.
///
/// The cost is capped at [`COST_CEILING`]: async-graphql adds field costs with plain `+`, so a
/// saturated value would overflow there (a panic in debug builds, a wrap to a small cost in
/// release). Far above any configured limit, the ceiling still refuses the query.
pub fn page_cost(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    let rows = first.or(last).map_or(DEFAULT_ROWS, |n| n.clamp(1, MAX_ROWS));
    usize::try_from(rows).unwrap_or(1).saturating_mul(child_complexity).saturating_add(1).min(COST_CEILING)
}

/// The most one connection field may cost. Documents are at most a few MB, so even a million
/// fields each at the ceiling sum far below `usize::MAX` on 64-bit targets.
pub const COST_CEILING: usize = u32::MAX as usize;

/// Whether the client selected `totalCount` on the connection being resolved.
pub fn wants_total_count(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

pub fn into_connection<M, T: OutputType>(
    page: Page<M>,
    total_count: Option<u64>,
    mut to_node: impl FnMut(M) -> T,
) -> RelayConnection<T> {
    let mut connection = Connection::with_additional_fields(
        page.has_previous_page,
        page.has_next_page,
        ConnectionTotals { total_count: total_count.unwrap_or_default() },
    );
    connection.edges.extend(page.items.into_iter().map(|(cursor, model)| Edge::new(cursor.encode(), to_node(model))));
    connection
}
