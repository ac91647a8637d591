//! Patron engagement: per-patron interaction aggregates, a 0–100 score and a lifecycle stage.
//!
//! Everything is aggregated in SQL (one grouped query for a page of patrons; the lifecycle
//! filter is a `MIN`/`MAX(occurred_at)` subquery), never by loading interactions into memory.
//!
//! # Engagement score (0–100)
//!
//! `score = round(recency + frequency + breadth)` where
//! - **recency** (up to 40): `40 × max(0, 1 − d / 365)`, `d` = whole days since the last interaction
//!   (0 without any interaction);
//! - **frequency** (up to 35): `35 × min(1, ln(1 + n) / ln(1 + 20))`, `n` = interactions in the last
//!   90 days (20 or more earn the full 35);
//! - **breadth** (up to 25): `25 × min(1, s / 5)`, `s` = distinct services ever used (5 or more earn
//!   the full 25).
//!
//! # Lifecycle stage (thresholds in `LifecycleSettings`, defaults 30 / 60 / 180 days)
//!
//! - **NEW**: the first interaction is less than `new_days` old, or there is no interaction yet
//!   and the patron record is less than `new_days` old;
//! - **NEVER_ENGAGED**: no interaction, record at least `new_days` old;
//! - **ACTIVE**: last interaction less than `at_risk_days` ago;
//! - **AT_RISK**: last interaction between `at_risk_days` and `lapsed_days` ago;
//! - **LAPSED**: last interaction `lapsed_days` or more ago.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::{interaction, patron};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait, Func, Query, SelectStatement},
};
use uuid::Uuid;

use crate::{
    auth::{Capability, Viewer},
    config::LifecycleSettings,
    error::AppResult,
};

/// Engagement is a staff-facing measure: staff, admins and partners with `patrons:read`
/// (patrons do not see their own score).
pub fn check_read(viewer: &Viewer) -> AppResult<()> {
    if viewer.can(Capability::ReadPatrons) { Ok(()) } else { Err(viewer.denied("read patron engagement")) }
}

/// Days counted by "interactions in the last N days".
pub const RECENT_DAYS: i64 = 90;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifecycleStage {
    New,
    Active,
    AtRisk,
    Lapsed,
    NeverEngaged,
}

impl LifecycleStage {
    pub const ALL: [LifecycleStage; 5] = [Self::New, Self::Active, Self::AtRisk, Self::Lapsed, Self::NeverEngaged];
}

/// Interaction aggregates of one patron.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// Interactions in the `RECENT_DAYS` before the moment the aggregates were taken.
    pub recent: i64,
    pub distinct_services: i64,
}

/// A patron's engagement at a moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Engagement {
    pub activity: Option<Activity>,
    pub score: i32,
    pub stage: LifecycleStage,
}

/// The score described in the module documentation.
pub fn score(activity: Option<&Activity>, now: DateTime<Utc>) -> i32 {
    let Some(a) = activity else {
        return 0;
    };
    let days = std::cmp::max((now - a.last_at).num_days(), 0) as f64;
    let recency = 40.0 * f64::max(1.0 - days / 365.0, 0.0);
    let frequency = 35.0 * f64::min((1.0_f64 + std::cmp::max(a.recent, 0) as f64).ln() / 21f64.ln(), 1.0);
    let breadth = 25.0 * f64::min(std::cmp::max(a.distinct_services, 0) as f64 / 5.0, 1.0);
    (recency + frequency + breadth).round() as i32
}

/// The stage described in the module documentation.
pub fn stage(
    activity: Option<&Activity>,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
    t: LifecycleSettings,
) -> LifecycleStage {
    let new_since = now - Duration::days(i64::from(t.new_days));
    match activity {
        None if created_at >= new_since => LifecycleStage::New,
        None => LifecycleStage::NeverEngaged,
        Some(a) if a.first_at >= new_since => LifecycleStage::New,
        Some(a) if a.last_at >= now - Duration::days(i64::from(t.at_risk_days)) => LifecycleStage::Active,
        Some(a) if a.last_at >= now - Duration::days(i64::from(t.lapsed_days)) => LifecycleStage::AtRisk,
        Some(_) => LifecycleStage::Lapsed,
    }
}

pub fn engagement(
    activity: Option<Activity>,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
    t: LifecycleSettings,
) -> Engagement {
    Engagement { score: score(activity.as_ref(), now), stage: stage(activity.as_ref(), created_at, now, t), activity }
}

/// `(patron, first, last, recent, distinct services)` as selected by `activity_for`.
type ActivityRow = (Uuid, DateTime<Utc>, DateTime<Utc>, i64, i64);

/// Aggregates for each patron with at least one interaction at or before `now`: ONE grouped query.
pub async fn activity_for(
    db: &impl ConnectionTrait,
    patron_ids: &[Uuid],
    now: DateTime<Utc>,
) -> AppResult<HashMap<Uuid, Activity>> {
    if patron_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let recent_since = now - Duration::days(RECENT_DAYS);
    let rows: Vec<ActivityRow> = interaction::Entity::find()
        .select_only()
        .column(interaction::Column::PatronId)
        .expr(Func::min(Expr::col(interaction::Column::OccurredAt)))
        .expr(Func::max(Expr::col(interaction::Column::OccurredAt)))
        .expr(Func::sum(
            Expr::case(interaction::Column::OccurredAt.gte(recent_since), Expr::val(1i32)).finally(Expr::val(0i32)),
        ))
        .expr(Expr::col(interaction::Column::ServiceId).count_distinct())
        .filter(interaction::Column::PatronId.is_in(patron_ids.iter().copied()))
        .filter(interaction::Column::OccurredAt.lte(now))
        .group_by(interaction::Column::PatronId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, first_at, last_at, recent, distinct_services)| {
            (id, Activity { first_at, last_at, recent, distinct_services })
        })
        .collect())
}

/// `patron_id` of patrons whose interactions up to `at` satisfy `having`.
fn grouped(at: DateTime<Utc>, having: Condition) -> SelectStatement {
    Query::select()
        .column(interaction::Column::PatronId)
        .from(interaction::Entity)
        .and_where(interaction::Column::PatronId.is_not_null())
        .and_where(interaction::Column::OccurredAt.lte(at))
        .group_by_col(interaction::Column::PatronId)
        .cond_having(having)
        .to_owned()
}

fn min_at() -> Expr {
    Expr::expr(Func::min(Expr::col(interaction::Column::OccurredAt)))
}

fn max_at() -> Expr {
    Expr::expr(Func::max(Expr::col(interaction::Column::OccurredAt)))
}

/// SQL condition on `patron` selecting the patrons in `stage` as of `at`.
pub fn stage_condition(stage: LifecycleStage, at: DateTime<Utc>, t: LifecycleSettings) -> Condition {
    let new_since = at - Duration::days(i64::from(t.new_days));
    let risk_since = at - Duration::days(i64::from(t.at_risk_days));
    let lapsed_since = at - Duration::days(i64::from(t.lapsed_days));
    let engaged = || {
        Query::select()
            .column(interaction::Column::PatronId)
            .from(interaction::Entity)
            .and_where(interaction::Column::PatronId.is_not_null())
            .and_where(interaction::Column::OccurredAt.lte(at))
            .to_owned()
    };
    let old = || min_at().lt(new_since);
    match stage {
        LifecycleStage::New => Condition::any()
            .add(patron::Column::Id.in_subquery(grouped(at, Condition::all().add(min_at().gte(new_since)))))
            .add(
                Condition::all()
                    .add(patron::Column::Id.not_in_subquery(engaged()))
                    .add(patron::Column::CreatedAt.gte(new_since)),
            ),
        LifecycleStage::NeverEngaged => Condition::all()
            .add(patron::Column::Id.not_in_subquery(engaged()))
            .add(patron::Column::CreatedAt.lt(new_since)),
        LifecycleStage::Active => Condition::all().add(
            patron::Column::Id.in_subquery(grouped(at, Condition::all().add(old()).add(max_at().gte(risk_since)))),
        ),
        LifecycleStage::AtRisk => Condition::all().add(patron::Column::Id.in_subquery(grouped(
            at,
            Condition::all().add(old()).add(max_at().lt(risk_since)).add(max_at().gte(lapsed_since)),
        ))),
        LifecycleStage::Lapsed => Condition::all().add(
            patron::Column::Id.in_subquery(grouped(at, Condition::all().add(old()).add(max_at().lt(lapsed_since)))),
        ),
    }
}

/// Patrons in any of `stages` as of `at` (for the `patrons` filter).
pub fn stages_condition(stages: &[LifecycleStage], at: DateTime<Utc>, t: LifecycleSettings) -> Condition {
    stages.iter().fold(Condition::any(), |c, s| c.add(stage_condition(*s, at, t)))
}

/// Number of patrons (existing at `at`) in each stage as of `at`.
pub async fn stage_counts(
    db: &impl ConnectionTrait,
    at: DateTime<Utc>,
    t: LifecycleSettings,
) -> AppResult<Vec<(LifecycleStage, u64)>> {
    let mut out = Vec::with_capacity(LifecycleStage::ALL.len());
    for stage in LifecycleStage::ALL {
        let n = patron::Entity::find()
            .filter(patron::Column::CreatedAt.lte(at))
            .filter(stage_condition(stage, at, t))
            .count(db)
            .await?;
        out.push((stage, n));
    }
    Ok(out)
}

/// Filter of the `patrons` list by lifecycle stage, evaluated at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageFilter {
    pub stages: Vec<LifecycleStage>,
    pub at: DateTime<Utc>,
    pub thresholds: LifecycleSettings,
}

impl StageFilter {
    pub fn condition(&self) -> Condition {
        stages_condition(&self.stages, self.at, self.thresholds)
    }
}
