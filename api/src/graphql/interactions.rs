//! Interactions: queries, mutations, the `Interaction` type, and the loaders that batch nested
//! `interactions` connections across parents.

use std::collections::HashMap;

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject, dataloader::Loader};
use chrono::{DateTime, Utc};
use entity::interaction;
use uuid::Uuid;

use super::{
    connection::{RelayConnection, into_connection, wants_total_count},
    context::ContextExt,
    enums::{Channel, InteractionKind, PatronType, SortDirection, to_db},
    ids::{NodeKind, parse_global_id, to_global_id},
    loaders::AppLoader,
    patrons::{Patron, load_patron},
    services::{Service, load_referenced_service},
};
pub use crate::domain::interactions::InteractionOwner;
use crate::{
    auth::Capability,
    domain::{
        interactions::{self as domain, InteractionFilter, NewInteraction, OwnerKind, Position, VisibleFilter},
        pagination::{self, Cursor, Page, PageArgs, PageWindow, SortValue},
    },
    error::{AppError, AppResult},
};

/// One touchpoint between a patron and a service.
pub struct Interaction(pub interaction::Model);

#[Object]
impl Interaction {
    async fn id(&self) -> ID {
        to_global_id(NodeKind::Interaction, self.0.id)
    }
    /// The patron; null once the interaction has been anonymised (retention, erasure) or for a
    /// walk-in recorded without a patron. Needs patron read rights.
    async fn patron(&self, ctx: &Context<'_>) -> Result<Option<Patron>> {
        match self.0.patron_id {
            Some(id) => load_patron(ctx, id).await.map(Some),
            None => Ok(None),
        }
    }
    async fn service(&self, ctx: &Context<'_>) -> Result<Service> {
        load_referenced_service(ctx, self.0.service_id).await
    }
    /// The patron's type when the interaction was recorded (kept after anonymisation).
    async fn patron_type(&self) -> PatronType {
        self.0.patron_type.into()
    }
    async fn kind(&self) -> InteractionKind {
        self.0.kind.into()
    }
    async fn channel(&self) -> Channel {
        self.0.channel.into()
    }
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
    async fn branch(&self) -> Option<&str> {
        self.0.branch.as_deref()
    }
    async fn staff_member(&self) -> Option<&str> {
        self.0.staff_member.as_deref()
    }
    /// Satisfaction, 1 (poor) to 5 (excellent).
    async fn rating(&self) -> Option<i32> {
        self.0.rating.map(i32::from)
    }
    async fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }
    /// Internal notes: staff and admins only.
    async fn staff_notes(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        ctx.viewer().require(Capability::ReadStaffNotes)?;
        Ok(self.0.staff_notes.as_deref())
    }
    /// System the interaction was synced from; unique together with `externalId`.
    async fn source(&self) -> Option<&str> {
        self.0.source.as_deref()
    }
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

// ----- loaders -------------------------------------------------------------------------------

super::loaders::by_id_loader! {
    /// Loader key: an interaction by id.
    InteractionId => interaction::Model, domain::by_ids
}

/// The page arguments of a nested connection, hashable so parents asking alike share a batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WindowKey {
    limit: u64,
    backward: bool,
    from: Option<Position>,
}

impl WindowKey {
    fn new(window: &PageWindow) -> AppResult<Self> {
        Ok(Self { limit: window.limit, backward: window.backward, from: window.time_position()? })
    }

    fn window(&self) -> PageWindow {
        PageWindow {
            limit: self.limit,
            backward: self.backward,
            cursor: self.from.map(|(time, id)| Cursor::new(SortValue::Time(time), id)),
        }
    }
}

/// Loader key: one page of one owner's interactions. The loader runs one windowed query per
/// distinct `(owner kind, filter, window)` among the keys of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnerPage {
    pub owner: InteractionOwner,
    pub filter: VisibleFilter,
    pub window: WindowKey,
}

impl Loader<OwnerPage> for AppLoader {
    type Value = Page<interaction::Model>;
    type Error = std::sync::Arc<AppError>;

    async fn load(&self, keys: &[OwnerPage]) -> Result<HashMap<OwnerPage, Self::Value>, Self::Error> {
        let mut groups: HashMap<(OwnerKind, &VisibleFilter, &WindowKey), Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups.entry((key.owner.kind(), &key.filter, &key.window)).or_default().push(key.owner.id());
        }
        let mut out = HashMap::with_capacity(keys.len());
        for ((kind, filter, window_key), owners) in groups {
            let pages = domain::pages_of(&self.db, kind, &owners, filter, &window_key.window()).await?;
            for (owner_id, page) in pages {
                let owner = match kind {
                    OwnerKind::Patron => InteractionOwner::Patron(owner_id),
                    OwnerKind::Service => InteractionOwner::Service(owner_id),
                };
                out.insert(OwnerPage { owner, filter: filter.clone(), window: window_key.clone() }, page);
            }
        }
        Ok(out)
    }
}

/// Loader key: how many interactions an owner has under a filter (one `GROUP BY` per filter).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnerCount {
    pub owner: InteractionOwner,
    pub filter: VisibleFilter,
}

impl Loader<OwnerCount> for AppLoader {
    type Value = u64;
    type Error = std::sync::Arc<AppError>;

    async fn load(&self, keys: &[OwnerCount]) -> Result<HashMap<OwnerCount, Self::Value>, Self::Error> {
        let mut groups: HashMap<(OwnerKind, &VisibleFilter), Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups.entry((key.owner.kind(), &key.filter)).or_default().push(key.owner.id());
        }
        let mut out = HashMap::with_capacity(keys.len());
        for ((kind, filter), owners) in groups {
            for (owner_id, n) in domain::counts_of(&self.db, kind, &owners, filter).await? {
                let owner = match kind {
                    OwnerKind::Patron => InteractionOwner::Patron(owner_id),
                    OwnerKind::Service => InteractionOwner::Service(owner_id),
                };
                out.insert(OwnerCount { owner, filter: filter.clone() }, n);
            }
        }
        Ok(out)
    }
}

/// Load one interaction (for `interaction(id)` and `node(id)`), applying the row rules.
pub async fn load_interaction(ctx: &Context<'_>, id: Uuid) -> Result<Interaction> {
    let viewer = ctx.viewer();
    domain::require_read(viewer)?;
    let model = ctx.loader()?.load_one(InteractionId(id)).await?.ok_or_else(|| AppError::not_found("interaction"))?;
    domain::check_visible(viewer, &model)?;
    super::audit::record_interaction_reads(ctx, [&model]).await?;
    Ok(Interaction(model))
}

/// A nested `interactions` connection of a patron or a service, batched across parents: the
/// page of every parent asking alike comes from one windowed query, and `totalCount` (when
/// selected) from one grouped count.
pub async fn interactions_of(
    ctx: &Context<'_>,
    owner: InteractionOwner,
    filter: Option<InteractionsFilter>,
    args: PageArgs,
) -> Result<RelayConnection<Interaction>> {
    let state = ctx.state()?;
    let viewer = ctx.viewer();
    domain::require_read(viewer)?;
    let filter = domain::visible(viewer, filter.unwrap_or_default().into_domain("filter")?)?;
    let window = args.window(state.limits())?;
    let loader = ctx.loader()?;
    let page = if window.limit == 0 {
        Page::empty()
    } else {
        let key = OwnerPage { owner, filter: filter.clone(), window: WindowKey::new(&window)? };
        loader.load_one(key).await?.unwrap_or_else(Page::empty)
    };
    let total = if wants_total_count(ctx) {
        Some(loader.load_one(OwnerCount { owner, filter }).await?.unwrap_or_default())
    } else {
        None
    };
    super::audit::record_interaction_reads(ctx, page.items.iter().map(|(_, m)| m)).await?;
    Ok(into_connection(page, total, Interaction))
}

// ----- queries -------------------------------------------------------------------------------

/// Which interactions to list. All conditions must hold.
#[derive(InputObject, Default)]
pub struct InteractionsFilter {
    /// Of this patron (patrons may only name themselves).
    pub patron_id: Option<ID>,
    /// With this service.
    pub service_id: Option<ID>,
    /// Any of these kinds.
    pub kinds: Option<Vec<InteractionKind>>,
    /// Through any of these channels.
    pub channels: Option<Vec<Channel>>,
    /// At or after this time.
    pub occurred_from: Option<DateTime<Utc>>,
    /// Before this time (exclusive).
    pub occurred_to: Option<DateTime<Utc>>,
    /// At this branch (exact name).
    pub branch: Option<String>,
    /// Only rated (true) or unrated (false) interactions.
    pub has_rating: Option<bool>,
}

impl InteractionsFilter {
    /// The domain filter; `field` names the argument in errors.
    fn into_domain(self, field: &str) -> AppResult<InteractionFilter> {
        let patron_id = self
            .patron_id
            .map(|id| parse_global_id(&id, NodeKind::Patron, &format!("{field}.patronId")))
            .transpose()?;
        let service_id = self
            .service_id
            .map(|id| parse_global_id(&id, NodeKind::Service, &format!("{field}.serviceId")))
            .transpose()?;
        let filter = InteractionFilter {
            patron_id,
            service_id,
            kinds: to_db(&self.kinds.unwrap_or_default()),
            channels: to_db(&self.channels.unwrap_or_default()),
            occurred_from: self.occurred_from,
            occurred_to: self.occurred_to,
            branch: self.branch.map(|b| b.trim().to_owned()).filter(|b| !b.is_empty()),
            has_rating: self.has_rating,
        };
        domain::validate_filter(&filter, field)?;
        Ok(filter)
    }
}

#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum InteractionOrderField {
    /// When the interaction happened (ties broken by id).
    #[default]
    OccurredAt,
}

#[derive(InputObject)]
pub struct InteractionOrder {
    #[graphql(default)]
    pub field: InteractionOrderField,
    /// Newest first unless told otherwise.
    #[graphql(default_with = "SortDirection::Desc")]
    pub direction: SortDirection,
}

#[derive(Default)]
pub struct InteractionQuery;

#[Object]
impl InteractionQuery {
    /// Interactions the viewer may see (a patron: their own), newest first by default.
    #[graphql(complexity = "super::connection::page_cost(first, last, child_complexity)")]
    async fn interactions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<InteractionsFilter>,
        order_by: Option<InteractionOrder>,
    ) -> Result<RelayConnection<Interaction>> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        domain::require_read(viewer)?;
        let filter = domain::visible(viewer, filter.unwrap_or_default().into_domain("filter")?)?;
        let window = PageArgs { first, after, last, before }.window(state.limits())?;
        let direction = order_by.map_or(pagination::SortDirection::Desc, |o| o.direction.into());
        let page = domain::list(&state.db, &filter, direction, &window).await?;
        let total = if wants_total_count(ctx) { Some(domain::count(&state.db, &filter).await?) } else { None };
        super::audit::record_interaction_reads(ctx, page.items.iter().map(|(_, m)| m)).await?;
        Ok(into_connection(page, total, Interaction))
    }

    /// One interaction by global id.
    async fn interaction(&self, ctx: &Context<'_>, id: ID) -> Result<Interaction> {
        let viewer = ctx.viewer();
        domain::require_read(viewer)?;
        load_interaction(ctx, parse_global_id(&id, NodeKind::Interaction, "id")?).await
    }
}

// ----- mutations -----------------------------------------------------------------------------

#[derive(InputObject)]
pub struct RecordInteractionInput {
    /// The patron; omit for an anonymous walk-in (then give `patronType`).
    pub patron_id: Option<ID>,
    pub service_id: ID,
    /// Only for interactions without a patron; otherwise the patron's type is recorded.
    pub patron_type: Option<PatronType>,
    pub kind: InteractionKind,
    pub channel: Channel,
    /// When it happened; defaults to now. At most 5 minutes in the future.
    pub occurred_at: Option<DateTime<Utc>>,
    pub branch: Option<String>,
    pub staff_member: Option<String>,
    /// Satisfaction, 1 to 5.
    pub rating: Option<i32>,
    pub comment: Option<String>,
    /// Internal notes (staff and admins only).
    pub staff_notes: Option<String>,
    /// Origin system, for idempotent sync; give together with `externalId`.
    pub source: Option<String>,
    /// The interaction's id in the origin system; unique per `source`.
    pub external_id: Option<String>,
}

impl RecordInteractionInput {
    fn into_domain(self, field: &str) -> AppResult<NewInteraction> {
        let patron_id = self
            .patron_id
            .map(|id| parse_global_id(&id, NodeKind::Patron, &format!("{field}.patronId")))
            .transpose()?;
        Ok(NewInteraction {
            patron_id,
            service_id: parse_global_id(&self.service_id, NodeKind::Service, &format!("{field}.serviceId"))?,
            patron_type: self.patron_type.map(Into::into),
            kind: self.kind.into(),
            channel: self.channel.into(),
            occurred_at: self.occurred_at,
            branch: self.branch,
            staff_member: self.staff_member,
            rating: self.rating,
            comment: self.comment,
            staff_notes: self.staff_notes,
            source: self.source,
            external_id: self.external_id,
        })
    }
}

#[derive(InputObject)]
pub struct RecordInteractionsInput {
    /// Up to the configured batch limit (1000 by default); recorded all-or-nothing.
    pub interactions: Vec<RecordInteractionInput>,
}

#[derive(SimpleObject)]
pub struct RecordInteractionResult {
    /// Position of the item in `input.interactions`.
    pub index: i32,
    /// False when an interaction with the same `(source, externalId)` was already present.
    pub created: bool,
    pub interaction: Option<Interaction>,
}

#[derive(SimpleObject)]
pub struct RecordInteractionsPayload {
    /// Interactions stored by this call.
    pub created: i32,
    /// Items whose `(source, externalId)` was already stored (or repeated within the batch).
    pub already_present: i32,
    /// One result per input item, in input order.
    pub results: Vec<RecordInteractionResult>,
}

fn count_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[derive(Default)]
pub struct InteractionMutation;

#[Object]
impl InteractionMutation {
    /// Record one interaction. Idempotent on `(source, externalId)`: a repeat returns the stored
    /// interaction without writing.
    async fn record_interaction(&self, ctx: &Context<'_>, input: RecordInteractionInput) -> Result<Interaction> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        domain::require_write(viewer)?;
        let input = input.into_domain("input")?;
        let recorded = domain::record(&state.db, viewer, input).await?;
        // Committed: announce it to subscribers (on every instance).
        state.events.interactions_recorded(std::slice::from_ref(&recorded)).await;
        super::recommendations::invalidate_for_interactions(state, recorded.created.then_some(&recorded.interaction))
            .await;
        super::audit::record_interaction_writes(ctx, recorded.created.then_some(&recorded.interaction)).await?;
        Ok(Interaction(recorded.interaction))
    }

    /// Record a batch of interactions all-or-nothing, idempotent on `(source, externalId)`:
    /// retrying a batch creates no duplicates and reports which items were already present.
    async fn record_interactions(
        &self,
        ctx: &Context<'_>,
        input: RecordInteractionsInput,
    ) -> Result<RecordInteractionsPayload> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        domain::require_write(viewer)?;
        let max = state.limits().max_bulk_interactions;
        domain::check_batch_size(input.interactions.len(), max)?;
        let inputs = input
            .interactions
            .into_iter()
            .enumerate()
            .map(|(i, item)| item.into_domain(&format!("input.interactions[{i}]")))
            .collect::<AppResult<Vec<_>>>()?;
        let recorded = domain::record_many(&state.db, viewer, inputs, max).await?;
        let created = recorded.iter().filter(|r| r.created).count();
        // Committed: announce the new ones to subscribers (on every instance).
        state.events.interactions_recorded(&recorded).await;
        super::recommendations::invalidate_for_interactions(
            state,
            recorded.iter().filter(|r| r.created).map(|r| &r.interaction),
        )
        .await;
        super::audit::record_interaction_writes(ctx, recorded.iter().filter(|r| r.created).map(|r| &r.interaction))
            .await?;
        Ok(RecordInteractionsPayload {
            created: count_i32(created),
            already_present: count_i32(recorded.len() - created),
            results: recorded
                .into_iter()
                .map(|r| RecordInteractionResult {
                    index: count_i32(r.index),
                    created: r.created,
                    interaction: Some(Interaction(r.interaction)),
                })
                .collect(),
        })
    }
}
