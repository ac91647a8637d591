//! `libraryStats(from, to)`: the library dashboard (staff, admins, partners with `reports:read`).

use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::{
    context::ContextExt,
    engagement::LifecycleCount,
    enums::{Channel, InteractionKind},
    services::{Service, load_service},
};
use crate::domain::stats::{self as domain, LibraryStats as Stats};

#[derive(SimpleObject)]
pub struct ChannelCount {
    pub channel: Channel,
    pub interactions: u64,
}

#[derive(SimpleObject)]
pub struct KindCount {
    pub kind: InteractionKind,
    pub interactions: u64,
}

/// One of the most used services in the window.
pub struct ServiceUsage {
    service_id: uuid::Uuid,
    interactions: u64,
    patrons: u64,
}

#[Object]
impl ServiceUsage {
    async fn service(&self, ctx: &Context<'_>) -> Result<Service> {
        load_service(ctx, self.service_id).await
    }
    async fn interactions(&self) -> u64 {
        self.interactions
    }
    /// Distinct (not anonymised) patrons who used it.
    async fn patrons(&self) -> u64 {
        self.patrons
    }
}

/// Dashboard figures over `[from, to)`.
pub struct LibraryStats(Stats);

#[Object]
impl LibraryStats {
    /// Patrons with at least one interaction in the window.
    async fn active_patrons(&self) -> u64 {
        self.0.active_patrons
    }
    /// Patrons whose record was created in the window.
    async fn new_patrons(&self) -> u64 {
        self.0.new_patrons
    }
    /// Patrons active in the first half of the window.
    async fn active_first_half(&self) -> u64 {
        self.0.active_first_half
    }
    /// Of those, active in the second half too.
    async fn retained_patrons(&self) -> u64 {
        self.0.retained
    }
    /// `retainedPatrons / activeFirstHalf`, 0 to 1; null when nobody was active in the first half.
    async fn retention(&self) -> Option<f64> {
        self.0.retention()
    }
    async fn interactions(&self) -> u64 {
        self.0.interactions
    }
    async fn interactions_by_channel(&self) -> Vec<ChannelCount> {
        self.0.by_channel.iter().map(|(c, n)| ChannelCount { channel: (*c).into(), interactions: *n }).collect()
    }
    async fn interactions_by_kind(&self) -> Vec<KindCount> {
        self.0.by_kind.iter().map(|(k, n)| KindCount { kind: (*k).into(), interactions: *n }).collect()
    }
    /// The 10 most used services, most interactions first.
    async fn top_services(&self) -> Vec<ServiceUsage> {
        self.0
            .top_services
            .iter()
            .map(|(s, n, p)| ServiceUsage { service_id: *s, interactions: *n, patrons: *p })
            .collect()
    }
    /// Average interaction rating (1–5); null without ratings.
    async fn average_satisfaction(&self) -> Option<f64> {
        self.0.average_rating()
    }
    async fn rating_count(&self) -> u64 {
        self.0.rating_count
    }
    /// Net promoter score: % answering 9–10 minus % answering 0–6; null without answers.
    async fn nps(&self) -> Option<f64> {
        self.0.nps()
    }
    async fn nps_responses(&self) -> u64 {
        self.0.nps_responses
    }
    /// Patrons per lifecycle stage as of `to`.
    async fn lifecycle(&self) -> Vec<LifecycleCount> {
        self.0.lifecycle.iter().map(|(s, n)| LifecycleCount { stage: (*s).into(), patrons: *n }).collect()
    }
    /// Launched campaigns still in their conversion window (launch plus `conversionWindowDays`)
    /// at `to`, or now if `to` is later.
    async fn open_campaigns(&self) -> u64 {
        self.0.open_campaigns
    }
}

#[derive(Default)]
pub struct StatsQuery;

#[Object]
impl StatsQuery {
    /// Dashboard over `[from, to)` (staff, admins, partners with `reports:read`).
    async fn library_stats(&self, ctx: &Context<'_>, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<LibraryStats> {
        let state = ctx.state()?;
        let stats = domain::library_stats(&state.db, ctx.viewer(), from, to, state.settings.lifecycle).await?;
        Ok(LibraryStats(stats))
    }
}
