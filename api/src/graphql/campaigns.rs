//! Campaigns: queries, mutations, the `Campaign`, `CampaignStats` and `CampaignDelivery` types
//! (see `domain::campaigns` for launch, conversion and lift).

use std::{collections::HashMap, sync::Arc};

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject, dataloader::Loader};
use chrono::{DateTime, Utc};
use entity::{audit_event::AuditAction, campaign, campaign_delivery, enums as db};
use uuid::Uuid;

use super::{
    audit::record_reads,
    connection::{RelayConnection, into_connection, wants_total_count},
    context::ContextExt,
    ids::{NodeKind, parse_global_id, to_global_id},
    loaders::AppLoader,
    patrons::{Patron, PatronId, load_patron},
    segments::{Segment, load_segment},
    services::{Service, load_referenced_service},
};
use crate::{
    auth::Capability,
    domain::{
        campaigns::{self as domain, CampaignStats as Stats, NewCampaign},
        pagination::PageArgs,
    },
    error::{AppError, AppResult},
};

/// How a campaign reaches patrons; each channel needs its marketing consent.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "db::CampaignChannel")]
pub enum CampaignChannel {
    Email,
    Sms,
    Push,
    /// The inbox of the mobile app (`myInbox`).
    InApp,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "db::CampaignStatus")]
pub enum CampaignStatus {
    /// Created, not launched.
    Draft,
    /// Members assigned and deliveries created.
    Launched,
}

/// Outreach promoting a service to a segment over one channel, with a random holdout.
pub struct Campaign(pub campaign::Model);

#[Object]
impl Campaign {
    pub async fn id(&self) -> ID {
        to_global_id(NodeKind::Campaign, self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn segment(&self, ctx: &Context<'_>) -> Result<Segment> {
        load_segment(ctx, self.0.segment_id).await
    }
    async fn promoted_service(&self, ctx: &Context<'_>) -> Result<Service> {
        load_referenced_service(ctx, self.0.promoted_service_id).await
    }
    async fn channel(&self) -> CampaignChannel {
        self.0.channel.into()
    }
    async fn message(&self) -> &str {
        &self.0.message
    }
    /// Share of the segment kept out of the campaign to measure its effect, 0–50.
    async fn holdout_percent(&self) -> i32 {
        self.0.holdout_percent
    }
    /// Days after delivery (after launch for the holdout) in which using the promoted service
    /// counts as a conversion.
    async fn conversion_window_days(&self) -> i32 {
        self.0.conversion_window_days
    }
    async fn status(&self) -> CampaignStatus {
        self.0.status.into()
    }
    async fn launched_at(&self) -> Option<DateTime<Utc>> {
        self.0.launched_at
    }
    /// End of the conversion window after launch: the campaign is open until then.
    async fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.0.ends_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Reach, conversion and lift over the holdout, computed now.
    async fn stats(&self, ctx: &Context<'_>) -> Result<CampaignStats> {
        let stats = ctx.loader()?.load_one(CampaignStatsKey(self.0.id)).await?;
        stats.map(CampaignStats).ok_or_else(|| AppError::not_found("campaign").into())
    }
}

/// A 95% confidence interval.
#[derive(SimpleObject)]
pub struct ConfidenceInterval {
    pub low: f64,
    pub high: f64,
}

/// What a campaign reached and achieved. Treatment conversions count from each delivery, holdout
/// conversions from the launch; rates compare deliveries with the holdout members who had
/// consented to the channel, so both groups are alike.
pub struct CampaignStats(Stats);

#[Object]
impl CampaignStats {
    /// Treatment group: segment members at launch outside the holdout.
    async fn targeted(&self) -> u64 {
        self.0.targeted
    }
    /// Holdout group: segment members at launch kept out of the campaign.
    async fn holdout(&self) -> u64 {
        self.0.holdout
    }
    /// Treatment members without consent to the channel at launch (no delivery).
    async fn skipped_no_consent(&self) -> u64 {
        self.0.skipped_no_consent
    }
    /// Deliveries created (consenting treatment members).
    async fn deliveries(&self) -> u64 {
        self.0.deliveries
    }
    async fn delivered(&self) -> u64 {
        self.0.delivered
    }
    async fn opened(&self) -> u64 {
        self.0.opened
    }
    /// Delivered members who used the promoted service within the window after delivery.
    async fn converted(&self) -> u64 {
        self.0.converted
    }
    /// Holdout members who had consented to the channel at launch: the comparison group.
    async fn holdout_eligible(&self) -> u64 {
        self.0.holdout_eligible
    }
    /// Of those, members who used the promoted service within the window after launch.
    async fn holdout_converted(&self) -> u64 {
        self.0.holdout_converted
    }
    /// `converted / deliveries`; null without deliveries.
    async fn treatment_conversion_rate(&self) -> Option<f64> {
        self.0.treatment_rate()
    }
    /// `holdoutConverted / holdoutEligible`; null without eligible holdout members.
    async fn holdout_conversion_rate(&self) -> Option<f64> {
        self.0.holdout_rate()
    }
    /// Treatment rate minus holdout rate.
    async fn lift(&self) -> Option<f64> {
        self.0.lift()
    }
    /// 95% interval of the lift (normal approximation for a difference of two proportions).
    async fn lift_confidence_interval(&self) -> Option<ConfidenceInterval> {
        self.0.lift_interval().map(|i| ConfidenceInterval { low: i.low, high: i.high })
    }
}

/// A campaign's message to one patron: in their inbox (in-app) or waiting for a partner tool to
/// send it (other channels).
pub struct CampaignDelivery(pub campaign_delivery::Model);

impl CampaignDelivery {
    async fn campaign_model(&self, ctx: &Context<'_>) -> Result<campaign::Model> {
        let model = ctx.loader()?.load_one(CampaignId(self.0.campaign_id)).await?;
        model.ok_or_else(|| AppError::not_found("campaign").into())
    }
}

#[Object]
impl CampaignDelivery {
    pub async fn id(&self) -> ID {
        to_global_id(NodeKind::CampaignDelivery, self.0.id)
    }
    async fn channel(&self) -> CampaignChannel {
        self.0.channel.into()
    }
    async fn message(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.campaign_model(ctx).await?.message)
    }
    async fn promoted_service(&self, ctx: &Context<'_>) -> Result<Service> {
        load_referenced_service(ctx, self.campaign_model(ctx).await?.promoted_service_id).await
    }
    /// The campaign (staff, admins, partners with `campaigns:read`).
    async fn campaign(&self, ctx: &Context<'_>) -> Result<Campaign> {
        domain::check_read(ctx.viewer())?;
        Ok(Campaign(self.campaign_model(ctx).await?))
    }
    /// The recipient; null once erased.
    async fn patron(&self, ctx: &Context<'_>) -> Result<Option<Patron>> {
        match self.0.patron_id {
            Some(id) => Ok(Some(load_patron(ctx, id).await?)),
            None => Ok(None),
        }
    }
    /// Where to send it: the email address for EMAIL, the phone number for SMS; null for the
    /// app channels or when the patron has none (campaign readers only).
    async fn address(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        domain::check_read(ctx.viewer())?;
        let Some(patron_id) = self.0.patron_id else {
            return Ok(None);
        };
        let patron = ctx.loader()?.load_one(PatronId(patron_id)).await?;
        Ok(patron.and_then(|p| match self.0.channel {
            db::CampaignChannel::Email => p.email,
            db::CampaignChannel::Sms => p.phone,
            db::CampaignChannel::Push | db::CampaignChannel::InApp => None,
        }))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
    async fn opened_at(&self) -> Option<DateTime<Utc>> {
        self.0.opened_at
    }
    /// Whether the patron opened (read) it.
    async fn read(&self) -> bool {
        self.0.opened_at.is_some()
    }
}

// ---------------------------------------------------------------------------------------------
// Loaders

super::loaders::by_id_loader! {
    /// Loader key: a campaign by id.
    CampaignId => campaign::Model, domain::by_ids
}

/// Loader key: a campaign's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CampaignStatsKey(pub Uuid);

impl Loader<CampaignStatsKey> for AppLoader {
    type Value = Stats;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[CampaignStatsKey]) -> Result<HashMap<CampaignStatsKey, Self::Value>, Self::Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let campaigns = domain::by_ids(&self.db, &ids).await?;
        let stats = domain::stats_for(&self.db, &campaigns).await?;
        Ok(stats.into_iter().map(|(id, s)| (CampaignStatsKey(id), s)).collect())
    }
}

super::loaders::by_id_loader! {
    /// Loader key: a delivery by id.
    DeliveryId => campaign_delivery::Model, domain::deliveries_by_ids
}

/// One campaign for `node`, with the viewer's access rules.
pub async fn load_campaign(ctx: &Context<'_>, id: Uuid) -> Result<Campaign> {
    domain::check_read(ctx.viewer())?;
    let model = ctx.loader()?.load_one(CampaignId(id)).await?.ok_or_else(|| AppError::not_found("campaign"))?;
    Ok(Campaign(model))
}

/// One delivery for `node`: its patron or a campaign reader.
pub async fn load_delivery(ctx: &Context<'_>, id: Uuid) -> Result<CampaignDelivery> {
    let viewer = ctx.viewer();
    if !viewer.can(Capability::ReadCampaigns) && viewer.patron_id().is_none() {
        return Err(viewer.denied("read campaign deliveries").into());
    }
    let model = ctx.loader()?.load_one(DeliveryId(id)).await?.ok_or_else(|| AppError::not_found("delivery"))?;
    domain::check_read_delivery(viewer, &model)?;
    Ok(CampaignDelivery(model))
}

// ---------------------------------------------------------------------------------------------
// Queries

#[derive(Default)]
pub struct CampaignQuery;

#[Object]
impl CampaignQuery {
    /// Campaigns, newest first (staff, admins, partners with `campaigns:read`).
    #[graphql(complexity = "super::connection::page_cost(first, last, child_complexity)")]
    async fn campaigns(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<RelayConnection<Campaign>> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        let window = PageArgs { first, after, last, before }.window(state.limits())?;
        let page = domain::list(&state.db, viewer, &window).await?;
        let total = if wants_total_count(ctx) { Some(domain::count(&state.db, viewer).await?) } else { None };
        Ok(into_connection(page, total, Campaign))
    }

    /// One campaign by global id.
    async fn campaign(&self, ctx: &Context<'_>, id: ID) -> Result<Campaign> {
        domain::check_read(ctx.viewer())?;
        load_campaign(ctx, parse_global_id(&id, NodeKind::Campaign, "id")?).await
    }

    /// The signed-in patron's in-app messages, newest first (patron tokens only).
    #[graphql(complexity = "super::connection::page_cost(first, last, child_complexity)")]
    async fn my_inbox(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<RelayConnection<CampaignDelivery>> {
        let state = ctx.state()?;
        domain::inbox_owner(ctx.viewer())?;
        let window = PageArgs { first, after, last, before }.window(state.limits())?;
        let page = domain::inbox(&state.db, ctx.viewer(), &window).await?;
        Ok(into_connection(page, None, CampaignDelivery))
    }

    /// Deliveries over `channel` waiting to be sent by a partner tool, oldest first (staff,
    /// admins, partners with `campaigns:read`). Report them with `markDelivered`.
    #[graphql(complexity = "super::connection::page_cost(first, None, child_complexity)")]
    async fn pending_deliveries(
        &self,
        ctx: &Context<'_>,
        channel: CampaignChannel,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<RelayConnection<CampaignDelivery>> {
        let state = ctx.state()?;
        domain::check_read(ctx.viewer())?;
        let window = PageArgs { first, after, ..PageArgs::default() }.window(state.limits())?;
        let page = domain::pending(&state.db, ctx.viewer(), channel.into(), &window).await?;
        // The page hands out contact details to send to.
        record_reads(ctx, AuditAction::ListPatrons, page.items.iter().filter_map(|(_, d)| d.patron_id)).await?;
        Ok(into_connection(page, None, CampaignDelivery))
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations

#[derive(InputObject)]
pub struct CreateCampaignInput {
    pub name: String,
    pub segment_id: ID,
    /// An active service.
    pub promoted_service_id: ID,
    pub channel: CampaignChannel,
    /// What the patrons receive (at most 2,000 characters).
    pub message: String,
    /// 0 to 50.
    #[graphql(default = 10)]
    pub holdout_percent: i32,
    /// 1 to 365.
    #[graphql(default = 30)]
    pub conversion_window_days: i32,
}

/// How many deliveries a `markDelivered` or `markOpened` call changed (already marked ones are
/// left as they were).
#[derive(SimpleObject)]
pub struct MarkDeliveriesPayload {
    pub updated: u64,
}

fn delivery_ids(ids: &[ID]) -> AppResult<Vec<Uuid>> {
    ids.iter().map(|id| parse_global_id(id, NodeKind::CampaignDelivery, "ids")).collect()
}

#[derive(Default)]
pub struct CampaignMutation;

#[Object]
impl CampaignMutation {
    /// Create a draft campaign (staff, admins, partners with `campaigns:write`).
    async fn create_campaign(&self, ctx: &Context<'_>, input: CreateCampaignInput) -> Result<Campaign> {
        let state = ctx.state()?;
        domain::check_write(ctx.viewer())?;
        let input = NewCampaign {
            name: input.name,
            segment_id: parse_global_id(&input.segment_id, NodeKind::Segment, "input.segmentId")?,
            promoted_service_id: parse_global_id(
                &input.promoted_service_id,
                NodeKind::Service,
                "input.promotedServiceId",
            )?,
            channel: input.channel.into(),
            message: input.message,
            holdout_percent: input.holdout_percent,
            conversion_window_days: input.conversion_window_days,
        };
        Ok(Campaign(domain::create(&state.db, ctx.viewer(), input).await?))
    }

    /// Assign the segment's members to treatment or holdout and create the deliveries, at once.
    /// A campaign launches once (CONFLICT after).
    async fn launch_campaign(&self, ctx: &Context<'_>, id: ID) -> Result<Campaign> {
        let state = ctx.state()?;
        domain::check_write(ctx.viewer())?;
        let id = parse_global_id(&id, NodeKind::Campaign, "id")?;
        Ok(Campaign(domain::launch(&state.db, ctx.viewer(), id, state.settings.lifecycle).await?))
    }

    /// Report deliveries sent (partner tools, `campaigns:write`). Idempotent.
    async fn mark_delivered(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<MarkDeliveriesPayload> {
        let state = ctx.state()?;
        domain::check_write(ctx.viewer())?;
        let updated = domain::mark_delivered(&state.db, ctx.viewer(), &delivery_ids(&ids)?).await?;
        Ok(MarkDeliveriesPayload { updated })
    }

    /// Report deliveries opened (partner tools, `campaigns:write`); implies delivered. Idempotent.
    async fn mark_opened(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<MarkDeliveriesPayload> {
        let state = ctx.state()?;
        domain::check_write(ctx.viewer())?;
        let updated = domain::mark_opened(&state.db, ctx.viewer(), &delivery_ids(&ids)?).await?;
        Ok(MarkDeliveriesPayload { updated })
    }

    /// The signed-in patron marks one of their in-app messages read. Idempotent.
    async fn mark_inbox_read(&self, ctx: &Context<'_>, delivery_id: ID) -> Result<CampaignDelivery> {
        let state = ctx.state()?;
        domain::inbox_owner(ctx.viewer())?;
        let id = parse_global_id(&delivery_id, NodeKind::CampaignDelivery, "deliveryId")?;
        Ok(CampaignDelivery(domain::mark_inbox_read(&state.db, ctx.viewer(), id).await?))
    }
}
