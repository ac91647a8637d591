//! The library dashboard (`libraryStats`): activity, retention, channels, kinds, top services,
//! satisfaction, NPS and lifecycle counts over a window `[from, to)`, every figure one SQL
//! aggregate (no rows are loaded into memory).

use chrono::{DateTime, Utc};
use entity::{
    enums::{Channel, InteractionKind},
    interaction, nps_response, patron,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func, Query},
};
use uuid::Uuid;

use super::{
    aggregate::{count, count_where},
    engagement::{self, LifecycleStage},
};
use crate::{
    auth::{Capability, Viewer},
    config::LifecycleSettings,
    error::{AppError, AppResult},
};

/// Services listed in `topServices`.
pub const TOP_SERVICES: u64 = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct LibraryStats {
    pub active_patrons: u64,
    pub new_patrons: u64,
    /// Patrons active in the first half of the window.
    pub active_first_half: u64,
    /// Of those, the ones active in the second half too.
    pub retained: u64,
    pub interactions: u64,
    pub by_channel: Vec<(Channel, u64)>,
    pub by_kind: Vec<(InteractionKind, u64)>,
    /// `(service, interactions, distinct patrons)`, most used first.
    pub top_services: Vec<(Uuid, u64, u64)>,
    pub rating_sum: i64,
    pub rating_count: u64,
    pub nps_responses: u64,
    pub nps_promoters: u64,
    pub nps_detractors: u64,
    pub lifecycle: Vec<(LifecycleStage, u64)>,
    /// Launched campaigns whose conversion window after launch is still running at the end of
    /// the window (or now, if that is earlier); see `domain::campaigns`.
    pub open_campaigns: u64,
}

impl LibraryStats {
    /// Active in both halves / active in the first half; `None` without first-half activity.
    pub fn retention(&self) -> Option<f64> {
        (self.active_first_half > 0).then(|| self.retained as f64 / self.active_first_half as f64)
    }

    pub fn average_rating(&self) -> Option<f64> {
        (self.rating_count > 0).then(|| self.rating_sum as f64 / self.rating_count as f64)
    }

    /// Promoters (9–10) % minus detractors (0–6) %, from −100 to 100.
    pub fn nps(&self) -> Option<f64> {
        (self.nps_responses > 0)
            .then(|| 100.0 * (self.nps_promoters as f64 - self.nps_detractors as f64) / self.nps_responses as f64)
    }
}

/// Staff, admins and partners with `reports:read`.
pub fn check_read(viewer: &Viewer) -> AppResult<()> {
    viewer.require(Capability::ReadReports)
}

pub async fn library_stats(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    thresholds: LifecycleSettings,
) -> AppResult<LibraryStats> {
    check_read(viewer)?;
    if to <= from {
        return Err(AppError::bad_field("to", "must be after `from`"));
    }
    let mid = from + (to - from) / 2;
    let in_window = || {
        interaction::Entity::find()
            .filter(interaction::Column::OccurredAt.gte(from))
            .filter(interaction::Column::OccurredAt.lt(to))
    };
    let distinct_patrons = |until: DateTime<Utc>, since: DateTime<Utc>| {
        interaction::Entity::find()
            .select_only()
            .expr(Expr::col(interaction::Column::PatronId).count_distinct())
            .filter(interaction::Column::OccurredAt.gte(since))
            .filter(interaction::Column::OccurredAt.lt(until))
            .filter(interaction::Column::PatronId.is_not_null())
            .into_tuple::<i64>()
    };

    let active_patrons = distinct_patrons(to, from).one(db).await?.map_or(0, count);
    let active_first_half = distinct_patrons(mid, from).one(db).await?.map_or(0, count);
    let both_halves = Query::select()
        .column(interaction::Column::PatronId)
        .from(interaction::Entity)
        .and_where(interaction::Column::OccurredAt.gte(from))
        .and_where(interaction::Column::OccurredAt.lt(to))
        .and_where(interaction::Column::PatronId.is_not_null())
        .group_by_col(interaction::Column::PatronId)
        .and_having(Expr::expr(Func::min(Expr::col(interaction::Column::OccurredAt))).lt(mid))
        .and_having(Expr::expr(Func::max(Expr::col(interaction::Column::OccurredAt))).gte(mid))
        .to_owned();
    let retained = patron::Entity::find().filter(patron::Column::Id.in_subquery(both_halves)).count(db).await?;
    let new_patrons = patron::Entity::find()
        .filter(patron::Column::CreatedAt.gte(from))
        .filter(patron::Column::CreatedAt.lt(to))
        .count(db)
        .await?;
    let interactions = in_window().count(db).await?;

    let by_channel: Vec<(Channel, i64)> = in_window()
        .select_only()
        .column(interaction::Column::Channel)
        .expr(Expr::col(interaction::Column::Id).count())
        .group_by(interaction::Column::Channel)
        .order_by_asc(interaction::Column::Channel)
        .into_tuple()
        .all(db)
        .await?;
    let by_kind: Vec<(InteractionKind, i64)> = in_window()
        .select_only()
        .column(interaction::Column::Kind)
        .expr(Expr::col(interaction::Column::Id).count())
        .group_by(interaction::Column::Kind)
        .order_by_asc(interaction::Column::Kind)
        .into_tuple()
        .all(db)
        .await?;
    let top_services: Vec<(Uuid, i64, i64)> = in_window()
        .select_only()
        .column(interaction::Column::ServiceId)
        .expr(Expr::col(interaction::Column::Id).count())
        .expr(Expr::col(interaction::Column::PatronId).count_distinct())
        .group_by(interaction::Column::ServiceId)
        .order_by_desc(Expr::col(interaction::Column::Id).count())
        .order_by_asc(interaction::Column::ServiceId)
        .limit(TOP_SERVICES)
        .into_tuple()
        .all(db)
        .await?;
    let (rating_sum, rating_count): (Option<i64>, i64) = in_window()
        .select_only()
        .expr(Func::sum(Expr::col(interaction::Column::Rating)))
        .expr(Expr::col(interaction::Column::Rating).count())
        .into_tuple()
        .one(db)
        .await?
        .unwrap_or((None, 0));

    let (nps_responses, promoters, detractors): (i64, Option<i64>, Option<i64>) = nps_response::Entity::find()
        .select_only()
        .expr(Expr::col(nps_response::Column::Id).count())
        .expr(count_where(nps_response::Column::Score.gte(9)))
        .expr(count_where(nps_response::Column::Score.lte(6)))
        .filter(nps_response::Column::AnsweredAt.gte(from))
        .filter(nps_response::Column::AnsweredAt.lt(to))
        .into_tuple()
        .one(db)
        .await?
        .unwrap_or((0, None, None));

    let lifecycle = engagement::stage_counts(db, to, thresholds).await?;
    let open_campaigns = super::campaigns::open_count(db, std::cmp::min(to, Utc::now())).await?;

    Ok(LibraryStats {
        active_patrons,
        new_patrons,
        active_first_half,
        retained,
        interactions,
        by_channel: by_channel.into_iter().map(|(c, n)| (c, count(n))).collect(),
        by_kind: by_kind.into_iter().map(|(k, n)| (k, count(n))).collect(),
        top_services: top_services.into_iter().map(|(s, n, p)| (s, count(n), count(p))).collect(),
        rating_sum: rating_sum.unwrap_or(0),
        rating_count: count(rating_count),
        nps_responses: count(nps_responses),
        nps_promoters: promoters.map_or(0, count),
        nps_detractors: detractors.map_or(0, count),
        lifecycle,
        open_campaigns,
    })
}
