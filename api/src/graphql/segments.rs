//! Segments: queries, mutations, the `Segment` type and its rule (see `domain::segments`).

use std::{collections::HashMap, sync::Arc};

use async_graphql::{Context, ID, InputObject, Object, Result, dataloader::Loader};
use chrono::{DateTime, Utc};
use entity::{audit_event::AuditAction, segment};
use uuid::Uuid;

use super::{
    audit::record_reads,
    campaigns::CampaignChannel,
    connection::{RelayConnection, into_connection, wants_total_count},
    context::ContextExt,
    engagement::LifecycleStage,
    enums::{ConsentPurpose, PatronType, to_db},
    ids::{NodeKind, parse_global_id, to_global_id},
    loaders::AppLoader,
    patrons::Patron,
};
use crate::{
    config::LifecycleSettings,
    domain::{
        pagination::PageArgs,
        segments::{self as domain, NewSegment, SegmentPatch, SegmentRule as Rule},
    },
    error::{AppError, AppResult},
};

/// A rule over patrons. Parts are combined with AND; each list matches ANY of its values; an
/// absent or empty part matches everyone. Erased patrons are never members.
#[derive(InputObject, Default)]
pub struct SegmentRuleInput {
    /// Patrons of any of these types.
    pub patron_types: Option<Vec<PatronType>>,
    /// Patrons carrying any of these tags (exact match).
    pub tags: Option<Vec<String>>,
    /// Patrons whose home branch is any of these (exact match).
    pub home_branches: Option<Vec<String>>,
    /// Patrons in any of these lifecycle stages now.
    pub lifecycle_stages: Option<Vec<LifecycleStage>>,
    /// Patrons who used at least one of these services.
    pub services_used: Option<Vec<ID>>,
    /// Patrons who used none of these services.
    pub services_never_used: Option<Vec<ID>>,
    /// Patrons whose latest interaction is before this time (patrons without any interaction
    /// do not match).
    pub last_activity_before: Option<DateTime<Utc>>,
    /// Patrons with an interaction at or after this time.
    pub last_activity_after: Option<DateTime<Utc>>,
    /// Patrons currently consenting to any of these purposes.
    pub consent_to: Option<Vec<ConsentPurpose>>,
    /// Patrons currently consenting to be contacted over any of these campaign channels (each
    /// needs its marketing consent); together with `consentTo` one ANY-of list.
    pub consent_to_channels: Option<Vec<CampaignChannel>>,
}

fn service_ids(ids: Option<Vec<ID>>, field: &str) -> AppResult<Vec<Uuid>> {
    ids.unwrap_or_default().iter().map(|id| parse_global_id(id, NodeKind::Service, field)).collect()
}

impl SegmentRuleInput {
    pub fn into_rule(self, field: &str) -> AppResult<Rule> {
        Ok(Rule {
            patron_types: to_db(&self.patron_types.unwrap_or_default()),
            tags: self.tags.unwrap_or_default(),
            home_branches: self.home_branches.unwrap_or_default(),
            lifecycle_stages: to_db(&self.lifecycle_stages.unwrap_or_default()),
            services_used: service_ids(self.services_used, &format!("{field}.servicesUsed"))?,
            services_never_used: service_ids(self.services_never_used, &format!("{field}.servicesNeverUsed"))?,
            last_activity_before: self.last_activity_before,
            last_activity_after: self.last_activity_after,
            consent_to: to_db(&self.consent_to.unwrap_or_default()),
            consent_to_channels: to_db(&self.consent_to_channels.unwrap_or_default()),
        })
    }
}

/// A segment's rule as stored (see `SegmentRuleInput`); empty lists match everyone.
pub struct SegmentRule(pub Rule);

#[Object]
impl SegmentRule {
    async fn patron_types(&self) -> Vec<PatronType> {
        self.0.patron_types.iter().map(|t| (*t).into()).collect()
    }
    async fn tags(&self) -> &[String] {
        &self.0.tags
    }
    async fn home_branches(&self) -> &[String] {
        &self.0.home_branches
    }
    async fn lifecycle_stages(&self) -> Vec<LifecycleStage> {
        self.0.lifecycle_stages.iter().map(|s| (*s).into()).collect()
    }
    /// Global ids of the services.
    async fn services_used(&self) -> Vec<ID> {
        self.0.services_used.iter().map(|id| to_global_id(NodeKind::Service, *id)).collect()
    }
    /// Global ids of the services.
    async fn services_never_used(&self) -> Vec<ID> {
        self.0.services_never_used.iter().map(|id| to_global_id(NodeKind::Service, *id)).collect()
    }
    async fn last_activity_before(&self) -> Option<DateTime<Utc>> {
        self.0.last_activity_before
    }
    async fn last_activity_after(&self) -> Option<DateTime<Utc>> {
        self.0.last_activity_after
    }
    async fn consent_to(&self) -> Vec<ConsentPurpose> {
        self.0.consent_to.iter().map(|p| (*p).into()).collect()
    }
    async fn consent_to_channels(&self) -> Vec<CampaignChannel> {
        self.0.consent_to_channels.iter().map(|c| (*c).into()).collect()
    }
}

/// A named rule over patrons; its members are computed when asked for.
pub struct Segment(pub segment::Model);

#[Object]
impl Segment {
    pub async fn id(&self) -> ID {
        to_global_id(NodeKind::Segment, self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn rule(&self) -> Result<SegmentRule> {
        Ok(SegmentRule(Rule::of(&self.0)?))
    }
    /// Patrons matching the rule now.
    async fn size(&self, ctx: &Context<'_>) -> Result<u64> {
        let t = ctx.state()?.settings.lifecycle;
        let key = SegmentSizeKey(self.0.id, [t.new_days, t.at_risk_days, t.lapsed_days]);
        let size = ctx.loader()?.load_one(key).await?;
        size.ok_or_else(|| AppError::not_found("segment").into())
    }
    /// Patrons matching the rule now, by name (also needs the patron-read capability).
    #[graphql(complexity = "super::connection::page_cost(first, last, child_complexity)")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<RelayConnection<Patron>> {
        let state = ctx.state()?;
        domain::check_read_members(ctx.viewer())?;
        let window = PageArgs { first, after, last, before }.window(state.limits())?;
        let rule = Rule::of(&self.0)?;
        let now = Utc::now();
        let page = domain::members(&state.db, &rule, now, state.settings.lifecycle, &window).await?;
        let total = if wants_total_count(ctx) {
            Some(domain::size(&state.db, &rule, now, state.settings.lifecycle).await?)
        } else {
            None
        };
        record_reads(ctx, AuditAction::ListPatrons, page.items.iter().map(|(_, p)| p.id)).await?;
        Ok(into_connection(page, total, Patron))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

super::loaders::by_id_loader! {
    /// Loader key: a segment by id.
    SegmentId => segment::Model, domain::by_ids
}

/// Loader key: the size of a segment now under the lifecycle thresholds `[new, at risk, lapsed]`
/// (one statement for a whole page of segments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentSizeKey(pub Uuid, pub [u32; 3]);

impl Loader<SegmentSizeKey> for AppLoader {
    type Value = u64;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[SegmentSizeKey]) -> Result<HashMap<SegmentSizeKey, Self::Value>, Self::Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rules: HashMap<Uuid, Rule> =
            domain::by_ids(&self.db, &ids).await?.iter().map(|m| Ok((m.id, Rule::of(m)?))).collect::<AppResult<_>>()?;
        // Every key of a request has the same thresholds; group anyway rather than assume it.
        let mut groups: HashMap<[u32; 3], Vec<(Uuid, Rule)>> = HashMap::new();
        for key in keys {
            if let Some(rule) = rules.get(&key.0) {
                groups.entry(key.1).or_default().push((key.0, rule.clone()));
            }
        }
        let now = Utc::now();
        let mut out = HashMap::with_capacity(keys.len());
        for (t, group) in groups {
            let thresholds = LifecycleSettings { new_days: t[0], at_risk_days: t[1], lapsed_days: t[2] };
            for (id, n) in domain::sizes(&self.db, &group, now, thresholds).await? {
                out.insert(SegmentSizeKey(id, t), n);
            }
        }
        Ok(out)
    }
}

/// One segment for a relation field or `node`, with the viewer's access rules.
pub async fn load_segment(ctx: &Context<'_>, id: Uuid) -> Result<Segment> {
    domain::check_read(ctx.viewer())?;
    let model = ctx.loader()?.load_one(SegmentId(id)).await?.ok_or_else(|| AppError::not_found("segment"))?;
    Ok(Segment(model))
}

#[derive(Default)]
pub struct SegmentQuery;

#[Object]
impl SegmentQuery {
    /// Segments, oldest first (staff, admins, partners with `campaigns:read`).
    #[graphql(complexity = "super::connection::page_cost(first, last, child_complexity)")]
    async fn segments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<RelayConnection<Segment>> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        let window = PageArgs { first, after, last, before }.window(state.limits())?;
        let page = domain::list(&state.db, viewer, &window).await?;
        let total = if wants_total_count(ctx) { Some(domain::count(&state.db, viewer).await?) } else { None };
        Ok(into_connection(page, total, Segment))
    }

    /// One segment by global id.
    async fn segment(&self, ctx: &Context<'_>, id: ID) -> Result<Segment> {
        domain::check_read(ctx.viewer())?;
        load_segment(ctx, parse_global_id(&id, NodeKind::Segment, "id")?).await
    }
}

#[derive(InputObject)]
pub struct CreateSegmentInput {
    pub name: String,
    /// `{}` selects every patron who is not erased.
    pub rule: SegmentRuleInput,
}

#[derive(InputObject)]
pub struct UpdateSegmentInput {
    pub name: Option<String>,
    /// Replaces the whole rule when given.
    pub rule: Option<SegmentRuleInput>,
}

#[derive(Default)]
pub struct SegmentMutation;

#[Object]
impl SegmentMutation {
    /// Create a segment (staff, admins, partners with `campaigns:write`).
    async fn create_segment(&self, ctx: &Context<'_>, input: CreateSegmentInput) -> Result<Segment> {
        let state = ctx.state()?;
        domain::check_write(ctx.viewer())?;
        let input = NewSegment { name: input.name, rule: input.rule.into_rule("input.rule")? };
        Ok(Segment(domain::create(&state.db, ctx.viewer(), input).await?))
    }

    /// Rename a segment or replace its rule. Launched campaigns keep their members.
    async fn update_segment(&self, ctx: &Context<'_>, id: ID, input: UpdateSegmentInput) -> Result<Segment> {
        let state = ctx.state()?;
        domain::check_write(ctx.viewer())?;
        let id = parse_global_id(&id, NodeKind::Segment, "id")?;
        let patch = SegmentPatch { name: input.name, rule: input.rule.map(|r| r.into_rule("input.rule")).transpose()? };
        Ok(Segment(domain::update(&state.db, ctx.viewer(), id, patch).await?))
    }
}
