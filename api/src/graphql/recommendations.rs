//! Recommendations (`Patron.recommendations`, `myRecommendations`) and awareness gaps
//! (`awarenessGaps`). The ranking and its rules live in `domain::recommendations` and
//! `domain::awareness`.

use async_graphql::{Context, Enum, Object, Result};
use entity::{interaction, patron};
use uuid::Uuid;

use super::{
    context::ContextExt,
    enums::PatronType,
    patrons::PatronId,
    services::{Service, load_service},
};
use crate::{
    domain::{
        awareness::{self, AwarenessGap as Gap},
        privacy,
        recommendations::{self as domain, MAX_ITEMS},
    },
    error::AppError,
    state::AppState,
};

/// Which ranking the patron got.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::RecommendationKind")]
pub enum RecommendationKind {
    /// From the patron's own history (the patron gave PERSONALISATION consent).
    Personalised,
    /// The ranking for the patron's type, computed without their personal history (no
    /// PERSONALISATION consent); it may list services the patron already uses.
    ByPatronType,
}

/// Services recommended to one patron, best first.
pub struct Recommendations(domain::Recommendations);

#[Object]
impl Recommendations {
    async fn kind(&self) -> RecommendationKind {
        self.0.kind.into()
    }
    async fn items(&self) -> Vec<Recommendation> {
        self.0.items.iter().cloned().map(Recommendation).collect()
    }
}

/// One recommended (active) service.
pub struct Recommendation(domain::Recommendation);

#[Object]
impl Recommendation {
    async fn service(&self, ctx: &Context<'_>) -> Result<Service> {
        load_service(ctx, self.0.service_id).await
    }
    /// 0 to 1: the estimated chance that this is the next service the patron takes up, among
    /// all the services that could be recommended (popularity within the patron's type, times
    /// the lift of each service they used; see `domain::recommendations`).
    async fn score(&self) -> f64 {
        self.0.score
    }
    /// Why it is recommended, e.g. "Often used by people who use Chat reference".
    async fn reason(&self) -> &str {
        &self.0.reason
    }
}

fn page_size(first: Option<i32>) -> Result<usize, AppError> {
    match first {
        None => Ok(domain::DEFAULT_ITEMS),
        Some(n) if n >= 1 && n as usize <= MAX_ITEMS => Ok(n as usize),
        Some(_) => Err(AppError::bad_field("first", format!("must be between 1 and {MAX_ITEMS}"))),
    }
}

/// `Patron.recommendations`: staff and admins for any patron, a patron for themself.
pub async fn recommendations_of(
    ctx: &Context<'_>,
    patron: &patron::Model,
    first: Option<i32>,
) -> Result<Recommendations> {
    domain::check_read(ctx.viewer(), patron.id)?;
    let first = page_size(first)?;
    let state = ctx.state()?;
    Ok(Recommendations(domain::for_patron(&state.db, &state.cache, patron, first).await?))
}

/// Forget the cached rankings of the patrons of freshly recorded interactions.
pub async fn invalidate_for_interactions<'a>(state: &AppState, rows: impl IntoIterator<Item = &'a interaction::Model>) {
    let mut patrons: Vec<Uuid> = rows.into_iter().filter_map(|r| r.patron_id).collect();
    patrons.sort_unstable();
    patrons.dedup();
    domain::invalidate_many(&state.cache, patrons).await;
}

/// Forget the cached ranking of a patron whose consent changed.
pub async fn invalidate_patron(state: &AppState, patron_id: Uuid) {
    domain::invalidate(&state.cache, patron_id).await;
}

/// One service a segment uses less than the library as a whole.
pub struct AwarenessGap(Gap);

#[Object]
impl AwarenessGap {
    async fn service(&self, ctx: &Context<'_>) -> Result<Service> {
        load_service(ctx, self.0.service_id).await
    }
    /// Share (0 to 1) of the segment's active patrons who used the service in the last 365 days.
    async fn reach_in_segment(&self) -> f64 {
        self.0.reach_in_segment()
    }
    /// Share (0 to 1) of all active patrons who used the service in the last 365 days.
    async fn reach_overall(&self) -> f64 {
        self.0.reach_overall()
    }
    /// `100 × reachInSegment / reachOverall`: 100 means as much as everybody, 0 nobody in the
    /// segment. Gaps are sorted by it, lowest first.
    async fn index(&self) -> f64 {
        self.0.index()
    }
    /// Active patrons of the segment who used the service.
    async fn segment_users(&self) -> u64 {
        self.0.segment_users
    }
    /// Patrons of the segment with an interaction in the last 365 days (recorded with that
    /// patron type).
    async fn segment_active_patrons(&self) -> u64 {
        self.0.segment_active_patrons
    }
    /// Active patrons of any type who used the service.
    async fn users(&self) -> u64 {
        self.0.users
    }
    /// Patrons of any type with an interaction in the last 365 days.
    async fn active_patrons(&self) -> u64 {
        self.0.active_patrons
    }
}

#[derive(Default)]
pub struct RecommendationQuery;

#[Object]
impl RecommendationQuery {
    /// The signed-in patron's recommendations (patron tokens only): personalised with
    /// PERSONALISATION consent, otherwise the ranking for their patron type. At most 50.
    async fn my_recommendations(&self, ctx: &Context<'_>, first: Option<i32>) -> Result<Recommendations> {
        let viewer = ctx.viewer();
        let id = viewer.patron_id().ok_or_else(|| viewer.denied("use `myRecommendations`: it is a patron's own"))?;
        let patron = ctx.loader()?.load_one(PatronId(id)).await?.ok_or_else(AppError::unauthenticated)?;
        privacy::check_patron_alive(&patron)?;
        recommendations_of(ctx, &patron, first).await
    }

    /// The active services offered to `patronType` that its patrons use least relative to all
    /// patrons, lowest index first (default 10, at most 100). Active patrons: with an interaction in the last 365
    /// days. Staff, admins and partners with `reports:read`.
    async fn awareness_gaps(
        &self,
        ctx: &Context<'_>,
        patron_type: PatronType,
        first: Option<i32>,
    ) -> Result<Vec<AwarenessGap>> {
        let state = ctx.state()?;
        let gaps = awareness::gaps(&state.db, ctx.viewer(), patron_type.into(), first).await?;
        Ok(gaps.into_iter().map(AwarenessGap).collect())
    }
}
