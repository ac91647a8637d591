//! `Patron.engagement`: interaction aggregates, score and lifecycle stage, batched through the
//! DataLoader (one grouped query per page of patrons). See `domain::engagement` for the formula.

use std::collections::HashMap;

use async_graphql::{Context, Enum, Object, Result, SimpleObject, dataloader::Loader};
use chrono::{DateTime, Utc};
use entity::patron;
use uuid::Uuid;

use super::{context::ContextExt, loaders::AppLoader};
use crate::{
    domain::engagement::{self as domain, Activity, Engagement},
    error::AppError,
};

/// Lifecycle stage of a patron (thresholds in `RAPPORT_LIFECYCLE_*_DAYS`).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::LifecycleStage")]
pub enum LifecycleStage {
    /// First interaction (or, without any, the patron record) younger than the NEW threshold.
    New,
    /// Last interaction more recent than the AT_RISK threshold.
    Active,
    /// No interaction for between the AT_RISK and LAPSED thresholds.
    AtRisk,
    /// No interaction for at least the LAPSED threshold.
    Lapsed,
    /// No interaction at all, record older than the NEW threshold.
    NeverEngaged,
}

/// Aggregates of one patron's interactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EngagementKey(pub Uuid);

impl Loader<EngagementKey> for AppLoader {
    type Value = Activity;
    type Error = std::sync::Arc<AppError>;

    async fn load(&self, keys: &[EngagementKey]) -> Result<HashMap<EngagementKey, Self::Value>, Self::Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = domain::activity_for(&self.db, &ids, Utc::now()).await?;
        Ok(rows.into_iter().map(|(id, a)| (EngagementKey(id), a)).collect())
    }
}

/// How engaged a patron is, now.
pub struct PatronEngagement(pub Engagement);

#[Object]
impl PatronEngagement {
    /// Null without any interaction.
    async fn first_interaction_at(&self) -> Option<DateTime<Utc>> {
        self.0.activity.map(|a| a.first_at)
    }
    /// Null without any interaction.
    async fn last_interaction_at(&self) -> Option<DateTime<Utc>> {
        self.0.activity.map(|a| a.last_at)
    }
    /// Interactions in the last 90 days.
    async fn interactions_last_90_days(&self) -> i64 {
        self.0.activity.map_or(0, |a| a.recent)
    }
    /// Distinct services ever used.
    async fn distinct_services(&self) -> i64 {
        self.0.activity.map_or(0, |a| a.distinct_services)
    }
    /// 0–100: recency (40, linear over 365 days) + frequency (35, log-scaled count of the last
    /// 90 days, full at 20) + breadth (25, distinct services, full at 5).
    async fn score(&self) -> i32 {
        self.0.score
    }
    async fn lifecycle_stage(&self) -> LifecycleStage {
        self.0.stage.into()
    }
}

/// `Patron.engagement` (staff, admins and partners with `patrons:read`).
pub async fn engagement_of(ctx: &Context<'_>, patron: &patron::Model) -> Result<PatronEngagement> {
    domain::check_read(ctx.viewer())?;
    let thresholds = ctx.state()?.settings.lifecycle;
    let activity = ctx.loader()?.load_one(EngagementKey(patron.id)).await?;
    Ok(PatronEngagement(domain::engagement(activity, patron.created_at, Utc::now(), thresholds)))
}

/// Patrons in one lifecycle stage.
#[derive(SimpleObject)]
pub struct LifecycleCount {
    pub stage: LifecycleStage,
    pub patrons: u64,
}
