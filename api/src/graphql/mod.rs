//! The GraphQL schema: one object per domain area, merged, built once at start-up.

pub mod connection;
pub mod context;
pub mod enums;
pub mod errors;
pub mod funders;
pub mod ids;
pub mod interactions;
pub mod limits;
pub mod loaders;
pub mod node;
pub mod patrons;
pub mod scalars;
pub mod services;

use async_graphql::{EmptySubscription, MergedObject, Schema};

use crate::state::AppState;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    services::ServiceQuery,
    patrons::PatronQuery,
    interactions::InteractionQuery,
    funders::FunderQuery,
    node::NodeQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    services::ServiceMutation,
    patrons::PatronMutation,
    interactions::InteractionMutation,
    funders::FunderMutation,
);

pub type AppSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

pub fn build_schema(state: AppState) -> AppSchema {
    let limits = state.settings.limits.clone();
    Schema::build(QueryRoot::default(), MutationRoot::default(), EmptySubscription)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(64)
        .limit_directives(20)
        .extension(errors::ErrorShaping)
        .extension(limits::DocumentLimits { max_aliases: limits.max_aliases })
        .data(state)
        .finish()
}

/// The schema as SDL, without needing a database (for `rapport schema` and the snapshot).
pub fn sdl() -> String {
    Schema::build(QueryRoot::default(), MutationRoot::default(), EmptySubscription).finish().sdl()
}
