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
