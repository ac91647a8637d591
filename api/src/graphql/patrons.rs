//! Patrons: queries, mutations, the `Patron` type and its loaders.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result, dataloader::Loader};
use chrono::{DateTime, Utc};
use entity::{audit_event::AuditAction, consent_event, patron};
use uuid::Uuid;

use super::{
    audit::{record_reads, record_write},
    connection::{RelayConnection, into_connection, wants_total_count},
    consent::consent_history_of,
    context::ContextExt,
    enums::{ConsentPurpose, ConsentSource, PatronStatus, PatronType, SortDirection, to_db},
    ids::{NodeKind, parse_global_id, to_global_id},
    interactions::{Interaction, InteractionOwner, InteractionsFilter, interactions_of},
    loaders::AppLoader,
};
use crate::{
    domain::{
        consent,
        pagination::PageArgs,
        patrons::{self as domain, ConsentInput, NewPatron, PatronFilter, PatronPatch, PatronSort},
        privacy,
    },
    error::AppError,
};

/// A person the library serves. Patrons may read their own record, without tags.
pub struct Patron(pub patron::Model);

#[Object]
impl Patron {
    pub async fn id(&self) -> ID {
        to_global_id(NodeKind::Patron, self.0.id)
    }
    /// Library card number, upper-case; null once the patron is erased.
    async fn card_number(&self) -> Option<&str> {
        self.0.card_number.as_deref()
    }
    /// Null once the patron is erased.
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn patron_type(&self) -> PatronType {
        self.0.patron_type.into()
    }
    async fn home_branch(&self) -> Option<&str> {
        self.0.home_branch.as_deref()
    }
    async fn status(&self) -> PatronStatus {
        self.0.status.into()
    }
    /// Staff-facing labels, sorted (staff, admins and partners only).
    async fn tags(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        domain::check_read_tags(ctx.viewer())?;
        Ok(ctx.loader()?.load_one(PatronTagsKey(self.0.id)).await?.unwrap_or_default())
    }
    /// Interaction aggregates, 0–100 score and lifecycle stage (staff, admins and partners only).
    async fn engagement(&self, ctx: &Context<'_>) -> Result<super::engagement::PatronEngagement> {
        super::engagement::engagement_of(ctx, &self.0).await
    }
    /// Services recommended to this patron (staff and admins; a patron their own): personalised
    /// with PERSONALISATION consent, otherwise the ranking for their patron type. At most 50.
    async fn recommendations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> Result<super::recommendations::Recommendations> {
        super::recommendations::recommendations_of(ctx, &self.0, first).await
    }
    /// Current consent per purpose: the latest decision for each purpose ever recorded.
    /// A purpose that is absent has never been given.
    async fn consents(&self, ctx: &Context<'_>) -> Result<Vec<Consent>> {
        let events = ctx.loader()?.load_one(PatronConsentsKey(self.0.id)).await?.unwrap_or_default();
        Ok(events.into_iter().map(Consent).collect())
    }
    /// Every consent decision recorded for this patron, newest first (staff, admins, partners
    /// with `patrons:read`; a patron their own).
    #[graphql(complexity = "super::connection::page_cost(first, last, child_complexity)")]
    async fn consent_history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<RelayConnection<Consent>> {
        consent_history_of(ctx, self.0.id, PageArgs { first, after, last, before }).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// When the patron was erased (all personal data removed).
    async fn erased_at(&self) -> Option<DateTime<Utc>> {
        self.0.erased_at
    }
    /// This patron's interactions that the viewer may see, newest first.
    #[graphql(complexity = "super::connection::page_cost(first, last, child_complexity)")]
    async fn interactions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<InteractionsFilter>,
    ) -> Result<RelayConnection<Interaction>> {
        interactions_of(ctx, InteractionOwner::Patron(self.0.id), filter, PageArgs { first, after, last, before }).await
    }
}

/// A consent decision on one purpose: the current one (`Patron.consents`) or one event of the
/// history (`Patron.consentHistory`).
pub struct Consent(pub consent_event::Model);

#[Object]
impl Consent {
    async fn purpose(&self) -> ConsentPurpose {
        self.0.purpose.into()
    }
    /// True when given, false when withdrawn.
    async fn granted(&self) -> bool {
        self.0.granted
    }
    /// When the patron gave or withdrew it.
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
    async fn source(&self) -> ConsentSource {
        self.0.source.into()
    }
    /// Version of the consent wording shown, if known.
    async fn text_version(&self) -> Option<&str> {
        self.0.text_version.as_deref()
    }
}

// ---------------------------------------------------------------------------------------------
// Loaders

super::loaders::by_id_loader! {
    /// Loader key: a patron by id.
    PatronId => patron::Model, domain::by_ids
}

/// Loader key: the tags of a patron.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PatronTagsKey(pub Uuid);

impl Loader<PatronTagsKey> for AppLoader {
    type Value = Vec<String>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[PatronTagsKey]) -> Result<HashMap<PatronTagsKey, Self::Value>, Self::Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let mut tags = domain::tags_for(&self.db, &ids).await?;
        Ok(keys.iter().map(|k| (*k, tags.remove(&k.0).unwrap_or_default())).collect())
    }
}

/// Loader key: the current consents of a patron.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PatronConsentsKey(pub Uuid);

impl Loader<PatronConsentsKey> for AppLoader {
    type Value = Vec<consent_event::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[PatronConsentsKey]) -> Result<HashMap<PatronConsentsKey, Self::Value>, Self::Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let mut consents = consent::current_consents(&self.db, &ids).await?;
        Ok(keys.iter().map(|k| (*k, consents.remove(&k.0).unwrap_or_default())).collect())
    }
}

/// Load one patron for a relation field or `node`, applying the viewer's access rules. Staff,
/// admin and partner reads are audited (`READ_PATRON`, once per patron and request).
pub async fn load_patron(ctx: &Context<'_>, id: Uuid) -> Result<Patron> {
    domain::check_read(ctx.viewer(), id)?;
    let model = ctx.loader()?.load_one(PatronId(id)).await?.ok_or_else(|| AppError::not_found("patron"))?;
    record_reads(ctx, AuditAction::ReadPatron, [id]).await?;
    Ok(Patron(model))
}

// ---------------------------------------------------------------------------------------------
// Queries

#[derive(InputObject, Default)]
pub struct PatronsFilter {
    /// Case-insensitive text in name, card number or email.
    pub text: Option<String>,
    /// Any of these patron types.
    pub patron_types: Option<Vec<PatronType>>,
    /// Carrying any of these tags (exact match).
    pub tags: Option<Vec<String>>,
    /// Any of these statuses.
    pub statuses: Option<Vec<PatronStatus>>,
    /// This home branch (exact match).
    pub home_branch: Option<String>,
    /// In any of these lifecycle stages, now (staff-facing; see `Patron.engagement`).
    pub lifecycle_stages: Option<Vec<super::engagement::LifecycleStage>>,
}

impl From<PatronsFilter> for PatronFilter {
    fn from(f: PatronsFilter) -> Self {
        PatronFilter {
            text: f.text,
            patron_types: to_db(&f.patron_types.unwrap_or_default()),
            tags: f.tags.unwrap_or_default(),
            statuses: to_db(&f.statuses.unwrap_or_default()),
            home_branch: f.home_branch,
            lifecycle: f.lifecycle_stages.filter(|s| !s.is_empty()).map(|s| crate::domain::engagement::StageFilter {
                stages: to_db(&s),
                at: chrono::Utc::now(),
                thresholds: crate::config::LifecycleSettings::default(),
            }),
        }
    }
}

#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum PatronOrderField {
    #[default]
    Name,
    CreatedAt,
    CardNumber,
}

#[derive(InputObject, Default)]
pub struct PatronOrder {
    #[graphql(default)]
    pub field: PatronOrderField,
    #[graphql(default)]
    pub direction: SortDirection,
}

#[derive(Default)]
pub struct PatronQuery;

#[Object]
impl PatronQuery {
    /// Patron records (staff, admins, partners with `patrons:read`).
    #[graphql(complexity = "super::connection::page_cost(first, last, child_complexity)")]
    async fn patrons(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<PatronsFilter>,
        order_by: Option<PatronOrder>,
    ) -> Result<RelayConnection<Patron>> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        let window = PageArgs { first, after, last, before }.window(state.limits())?;
        let mut filter: PatronFilter = filter.unwrap_or_default().into();
        if let Some(lifecycle) = filter.lifecycle.as_mut() {
            lifecycle.thresholds = state.settings.lifecycle;
        }
        let order = order_by.unwrap_or_default();
        let sort = match order.field {
            PatronOrderField::Name => PatronSort::Name,
            PatronOrderField::CreatedAt => PatronSort::CreatedAt,
            PatronOrderField::CardNumber => PatronSort::CardNumber,
        };
        let page = domain::list(&state.db, viewer, &filter, sort, order.direction.into(), &window).await?;
        let total = if wants_total_count(ctx) { Some(domain::count(&state.db, viewer, &filter).await?) } else { None };
        record_reads(ctx, AuditAction::ListPatrons, page.items.iter().map(|(_, p)| p.id)).await?;
        Ok(into_connection(page, total, Patron))
    }

    /// One patron by global id. A patron may ask only for their own id.
    async fn patron(&self, ctx: &Context<'_>, id: ID) -> Result<Patron> {
        domain::check_read_any(ctx.viewer())?;
        load_patron(ctx, parse_global_id(&id, NodeKind::Patron, "id")?).await
    }

    /// The signed-in patron's own record (patron tokens only).
    async fn me(&self, ctx: &Context<'_>) -> Result<Patron> {
        let viewer = ctx.viewer();
        let id = viewer.patron_id().ok_or_else(|| viewer.denied("use `me`: it is the signed-in patron's record"))?;
        let patron = load_patron(ctx, id).await?;
        // An erased patron's token stands for no one any more.
        privacy::check_patron_alive(&patron.0)?;
        Ok(patron)
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations

/// A consent decision recorded by staff on the patron's behalf.
#[derive(InputObject)]
pub struct ConsentDecisionInput {
    pub purpose: ConsentPurpose,
    pub granted: bool,
    /// Version of the consent wording shown to the patron, if known.
    pub text_version: Option<String>,
}

impl From<ConsentDecisionInput> for ConsentInput {
    fn from(c: ConsentDecisionInput) -> Self {
        ConsentInput { purpose: c.purpose.into(), granted: c.granted, text_version: c.text_version }
    }
}

#[derive(InputObject)]
pub struct CreatePatronInput {
    /// 4–32 letters, digits or dashes; stored upper-case; unique.
    pub card_number: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub patron_type: PatronType,
    pub home_branch: Option<String>,
    /// ACTIVE unless given.
    pub status: Option<PatronStatus>,
    /// Up to 20 tags of at most 50 characters; duplicates are dropped.
    #[graphql(default)]
    pub tags: Vec<String>,
    /// Initial consents, at most one per purpose.
    #[graphql(default)]
    pub consents: Vec<ConsentDecisionInput>,
}

#[derive(InputObject)]
pub struct UpdatePatronInput {
    pub id: ID,
    pub card_number: Option<String>,
    pub name: Option<String>,
    /// Null or empty clears it.
    pub email: MaybeUndefined<String>,
    /// Null or empty clears it.
    pub phone: MaybeUndefined<String>,
    pub patron_type: Option<PatronType>,
    /// Null or empty clears it.
    pub home_branch: MaybeUndefined<String>,
    pub status: Option<PatronStatus>,
    /// Replaces all tags when given.
    pub tags: Option<Vec<String>>,
    /// Consent decisions to record now, at most one per purpose.
    pub consents: Option<Vec<ConsentDecisionInput>>,
}

/// Absent keeps a field, null clears it.
fn patch_value(value: MaybeUndefined<String>) -> Option<Option<String>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

/// Consent decisions recorded with a create or update are also an `UPDATE_CONSENT`, so one
/// filter on the action finds every consent change.
async fn record_consent_write(ctx: &Context<'_>, patron_id: Uuid, decisions: usize) -> Result<()> {
    if decisions > 0 {
        let detail = format!("source: STAFF; decisions recorded: {decisions}");
        record_write(ctx, AuditAction::UpdateConsent, Some(patron_id), Some(detail)).await?;
    }
    Ok(())
}

/// The names of the fields a patch changes, for the audit trail (never their values).
fn changed_fields(patch: &PatronPatch) -> String {
    let fields = [
        ("cardNumber", patch.card_number.is_some()),
        ("name", patch.name.is_some()),
        ("email", patch.email.is_some()),
        ("phone", patch.phone.is_some()),
        ("patronType", patch.patron_type.is_some()),
        ("homeBranch", patch.home_branch.is_some()),
        ("status", patch.status.is_some()),
        ("tags", patch.tags.is_some()),
    ];
    let names: Vec<&str> = fields.iter().filter(|(_, changed)| *changed).map(|(name, _)| *name).collect();
    let mut detail = format!("fields: {}", if names.is_empty() { "none".to_owned() } else { names.join(", ") });
    if !patch.consents.is_empty() {
        detail.push_str(&format!("; consents recorded: {}", patch.consents.len()));
    }
    detail
}

#[derive(Default)]
pub struct PatronMutation;

#[Object]
impl PatronMutation {
    /// Register a patron with tags and initial consents (staff, admins, partners with
    /// `patrons:write`).
    async fn create_patron(&self, ctx: &Context<'_>, input: CreatePatronInput) -> Result<Patron> {
        let state = ctx.state()?;
        let input = NewPatron {
            card_number: input.card_number,
            name: input.name,
            email: input.email,
            phone: input.phone,
            patron_type: input.patron_type.into(),
            home_branch: input.home_branch,
            status: input.status.map(Into::into),
            tags: input.tags,
            consents: input.consents.into_iter().map(Into::into).collect(),
        };
        let consents = input.consents.len();
        let created = domain::create(&state.db, ctx.viewer(), input).await?;
        let detail = (consents > 0).then(|| format!("consents recorded: {consents}"));
        record_write(ctx, AuditAction::CreatePatron, Some(created.id), detail).await?;
        record_consent_write(ctx, created.id, consents).await?;
        Ok(Patron(created))
    }

    /// Change a patron; omitted fields keep their value.
    async fn update_patron(&self, ctx: &Context<'_>, input: UpdatePatronInput) -> Result<Patron> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        domain::check_write(viewer)?;
        let id = parse_global_id(&input.id, NodeKind::Patron, "input.id")?;
        let patch = PatronPatch {
            card_number: input.card_number,
            name: input.name,
            email: patch_value(input.email),
            phone: patch_value(input.phone),
            patron_type: input.patron_type.map(Into::into),
            home_branch: patch_value(input.home_branch),
            status: input.status.map(Into::into),
            tags: input.tags,
            consents: input.consents.unwrap_or_default().into_iter().map(Into::into).collect(),
        };
        let detail = changed_fields(&patch);
        let consents = patch.consents.len();
        let updated = domain::update(&state.db, viewer, id, patch).await?;
        // Type and consent feed the patron's recommendations.
        super::recommendations::invalidate_patron(state, id).await;
        record_write(ctx, AuditAction::UpdatePatron, Some(id), Some(detail)).await?;
        record_consent_write(ctx, id, consents).await?;
        Ok(Patron(updated))
    }
}
