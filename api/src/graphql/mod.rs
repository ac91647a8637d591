//! The GraphQL schema: one object per domain area, merged, built once at start-up.

pub mod audit;
pub mod campaigns;
pub mod connection;
pub mod consent;
pub mod context;
pub mod engagement;
pub mod enums;
pub mod errors;
pub mod feedback;
pub mod funders;
pub mod identity;
pub mod ids;
pub mod interactions;
pub mod limits;
pub mod loaders;
pub mod node;
pub mod observe;
pub mod patrons;
pub mod privacy;
pub mod recommendations;
pub mod reports;
pub mod revocation;
pub mod scalars;
pub mod segments;
pub mod services;
pub mod stats;
pub mod subscriptions;

use async_graphql::{MergedObject, Schema};

use crate::state::AppState;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    services::ServiceQuery,
    patrons::PatronQuery,
    interactions::InteractionQuery,
    funders::FunderQuery,
    node::NodeQuery,
    identity::IdentityQuery,
    audit::AuditQuery,
    privacy::PrivacyQuery,
    stats::StatsQuery,
    reports::ReportQueryRoot,
    segments::SegmentQuery,
    campaigns::CampaignQuery,
    recommendations::RecommendationQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    services::ServiceMutation,
    patrons::PatronMutation,
    interactions::InteractionMutation,
    funders::FunderMutation,
    identity::IdentityMutation,
    consent::ConsentMutation,
    privacy::PrivacyMutation,
    feedback::FeedbackMutation,
    segments::SegmentMutation,
    campaigns::CampaignMutation,
);

pub type AppSchema = Schema<QueryRoot, MutationRoot, subscriptions::SubscriptionRoot>;

pub fn build_schema(state: AppState) -> AppSchema {
    let limits = state.settings.limits.clone();
    Schema::build(QueryRoot::default(), MutationRoot::default(), subscriptions::SubscriptionRoot)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(64)
        .limit_directives(20)
        .extension(errors::ErrorShaping)
        .extension(revocation::RevocationCheck)
        .extension(limits::DocumentLimits { max_aliases: limits.max_aliases })
        .extension(observe::Observe)
        .extension(audit::AuditScope)
        .data(state)
        .finish()
}

/// The schema as SDL, without needing a database (for `rapport schema` and the snapshot).
pub fn sdl() -> String {
    Schema::build(QueryRoot::default(), MutationRoot::default(), subscriptions::SubscriptionRoot).finish().sdl()
}
