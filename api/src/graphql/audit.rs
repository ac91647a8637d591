//! The audit trail in GraphQL: recording reads and writes from resolvers (one request id per
//! request, each read recorded once per request), and `auditEvents` for admins.
//!
//! Reads are recorded for STAFF, ADMIN and PARTNER viewers only (see `domain::audit`); writes
//! for everyone. List pages record one event per patron returned.

use std::{
    any::TypeId,
    collections::HashSet,
    sync::{Arc, Mutex},
};

use async_graphql::{
    Context, Enum, ID, InputObject, Object, Request, Result, ServerResult,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest},
};
use chrono::{DateTime, Utc};
use entity::{
    audit_event::{self, ActorRole as DbActorRole, AuditAction as DbAuditAction},
    interaction,
};
use uuid::Uuid;

use super::{
    connection::{RelayConnection, into_connection, wants_total_count},
    context::ContextExt,
    ids::{NodeKind, parse_global_id, to_global_id},
};
use crate::{
    domain::{
        audit::{self as domain, AuditFilter, RequestId},
        pagination::PageArgs,
    },
    error::AppResult,
};

// ---------------------------------------------------------------------------------------------
// Per-request scope

/// Request data: the request id and the reads already recorded in this request (a list of 100
/// interactions of one patron, each asking for `patron`, records one `READ_PATRON`).
pub struct RequestAudit {
    request_id: RequestId,
    seen: Mutex<HashSet<(DbAuditAction, Uuid)>>,
}

impl RequestAudit {
    pub fn new(request_id: RequestId) -> Self {
        Self { request_id, seen: Mutex::new(HashSet::new()) }
    }

    /// Keep the ids not yet recorded for `action` in this request.
    fn first_time(&self, action: DbAuditAction, ids: impl IntoIterator<Item = Uuid>) -> Vec<Uuid> {
        match self.seen.lock() {
            Ok(mut seen) => ids.into_iter().filter(|id| seen.insert((action, *id))).collect(),
            // A poisoned set only loses de-duplication, never events.
            Err(_) => ids.into_iter().collect(),
        }
    }
}

/// Schema extension: gives every request (HTTP, batch item, WebSocket operation) its
/// [`RequestAudit`], reusing a [`RequestId`] the transport attached.
pub struct AuditScope;

impl ExtensionFactory for AuditScope {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AuditScopeExtension)
    }
}

struct AuditScopeExtension;

#[async_trait::async_trait]
impl Extension for AuditScopeExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if !request.data.contains_key(&TypeId::of::<RequestAudit>()) {
            let id = request
                .data
                .get(&TypeId::of::<RequestId>())
                .and_then(|data| data.downcast_ref::<RequestId>())
                .copied()
                .unwrap_or_else(RequestId::generate);
            request.data.insert(RequestAudit::new(id));
        }
        next.run(ctx, request).await
    }
}

/// The request id of this request (a fresh one outside a request scope).
pub fn request_id(ctx: &Context<'_>) -> RequestId {
    ctx.data_opt::<RequestAudit>()
        .map(|scope| scope.request_id)
        .or_else(|| ctx.data_opt::<RequestId>().copied())
        .unwrap_or_else(RequestId::generate)
}

/// Record that the viewer read these patrons' data (no-op for patrons and for ids already
/// recorded with this action in this request). Fails only when the event cannot be stored: the
/// data is then not served. The ids are collected before anything is awaited.
pub fn record_reads<'c>(
    ctx: &'c Context<'_>,
    action: DbAuditAction,
    patron_ids: impl IntoIterator<Item = Uuid>,
) -> impl Future<Output = AppResult<()>> + 'c {
    let ids: Vec<Uuid> = patron_ids.into_iter().collect();
    record_read_ids(ctx, action, ids)
}

async fn record_read_ids(ctx: &Context<'_>, action: DbAuditAction, patron_ids: Vec<Uuid>) -> AppResult<()> {
    let viewer = ctx.viewer();
    if !domain::audits_reads_of(viewer) {
        return Ok(());
    }
    let ids: Vec<Uuid> = match ctx.data_opt::<RequestAudit>() {
        Some(scope) => scope.first_time(action, patron_ids),
        None => {
            let mut seen = HashSet::new();
            patron_ids.into_iter().filter(|id| seen.insert(*id)).collect()
        }
    };
    if ids.is_empty() {
        return Ok(());
    }
    let request = request_id(ctx);
    let events = ids.into_iter().map(|id| domain::event(viewer, action, Some(id), None, Some(request))).collect();
    ctx.state()?.audit.record(events).await
}

/// Record a write to a patron's data (by anyone, the patron included). `detail` names fields
/// and counts, never values.
pub async fn record_write(
    ctx: &Context<'_>,
    action: DbAuditAction,
    patron_id: Option<Uuid>,
    detail: Option<String>,
) -> AppResult<()> {
    let event = domain::event(ctx.viewer(), action, patron_id, detail, Some(request_id(ctx)));
    ctx.state()?.audit.record_one(event).await
}

/// `READ_INTERACTIONS` for every patron whose interactions are among `rows` (anonymised rows
/// name no one).
pub fn record_interaction_reads<'c, 'a>(
    ctx: &'c Context<'_>,
    rows: impl IntoIterator<Item = &'a interaction::Model>,
) -> impl Future<Output = AppResult<()>> + 'c {
    let ids: Vec<Uuid> = rows.into_iter().filter_map(|row| row.patron_id).collect();
    record_read_ids(ctx, DbAuditAction::ReadInteractions, ids)
}

/// `RECORD_INTERACTION` once per patron with newly stored interactions, with their count.
pub fn record_interaction_writes<'c, 'a>(
    ctx: &'c Context<'_>,
    created: impl IntoIterator<Item = &'a interaction::Model>,
) -> impl Future<Output = AppResult<()>> + 'c {
    let mut per_patron: Vec<(Uuid, usize)> = Vec::new();
    for patron_id in created.into_iter().filter_map(|row| row.patron_id) {
        match per_patron.iter_mut().find(|(id, _)| *id == patron_id) {
            Some((_, n)) => *n += 1,
            None => per_patron.push((patron_id, 1)),
        }
    }
    record_write_counts(ctx, per_patron)
}

async fn record_write_counts(ctx: &Context<'_>, per_patron: Vec<(Uuid, usize)>) -> AppResult<()> {
    if per_patron.is_empty() {
        return Ok(());
    }
    let viewer = ctx.viewer();
    let request = request_id(ctx);
    let events = per_patron
        .into_iter()
        .map(|(id, n)| {
            let detail = format!("interactions recorded: {n}");
            domain::event(viewer, DbAuditAction::RecordInteraction, Some(id), Some(detail), Some(request))
        })
        .collect();
    ctx.state()?.audit.record(events).await
}

// ---------------------------------------------------------------------------------------------
// GraphQL types

/// What an audit event records.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "DbAuditAction")]
pub enum AuditAction {
    /// One patron record read.
    ReadPatron,
    /// A patron record returned in a list page (one event per patron returned).
    ListPatrons,
    /// The patron's interactions read (one event per patron whose rows were returned).
    ReadInteractions,
    CreatePatron,
    UpdatePatron,
    UpdateConsent,
    /// Interactions recorded for the patron.
    RecordInteraction,
    ErasePatron,
    ExportPatron,
    /// PIN set or reset by staff.
    SetPin,
    /// PIN changed by the patron.
    ChangePin,
    /// Old interactions anonymised by the retention job.
    RetentionPurge,
}

/// The role an actor acted in.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "DbActorRole")]
pub enum AuditActorRole {
    Admin,
    Staff,
    Patron,
    Funder,
    Partner,
    /// A scheduled job or an operator command.
    System,
}

/// Who read or changed which patron's data, when. Holds no personal data.
pub struct AuditEvent(pub audit_event::Model);

#[Object]
impl AuditEvent {
    /// The event's id (a UUID; audit events are not `node`s).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
    /// The viewer's subject: account id, partner client id, patron id, or `system:<job>`.
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    async fn actor_role(&self) -> AuditActorRole {
        self.0.actor_role.into()
    }
    async fn action(&self) -> AuditAction {
        self.0.action.into()
    }
    /// Global id of the patron concerned (kept after the patron is erased).
    async fn target_patron_id(&self) -> Option<ID> {
        self.0.target_patron_id.map(|id| to_global_id(NodeKind::Patron, id))
    }
    /// Field names and counts; never personal data.
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
    /// The GraphQL request the event belongs to.
    async fn request_id(&self) -> Option<String> {
        self.0.request_id.map(|id| id.to_string())
    }
}

/// Which audit events to list. All conditions must hold.
#[derive(InputObject, Default)]
pub struct AuditEventsFilter {
    /// Exactly this actor (account id, partner client id, patron id, `system:<job>`).
    pub actor: Option<String>,
    /// About this patron (global id).
    pub target_patron_id: Option<ID>,
    /// This action.
    pub action: Option<AuditAction>,
    /// Any of these actions.
    pub actions: Option<Vec<AuditAction>>,
    /// At or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Before this time (exclusive).
    pub to: Option<DateTime<Utc>>,
}

impl AuditEventsFilter {
    fn into_domain(self) -> AppResult<AuditFilter> {
        let target_patron_id = self
            .target_patron_id
            .map(|id| parse_global_id(&id, NodeKind::Patron, "filter.targetPatronId"))
            .transpose()?;
        let mut actions: Vec<DbAuditAction> = self.actions.unwrap_or_default().into_iter().map(Into::into).collect();
        actions.extend(self.action.map(DbAuditAction::from));
        Ok(AuditFilter { actor: self.actor, target_patron_id, actions, from: self.from, to: self.to })
    }
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The audit trail, newest first (admins only).
    #[graphql(complexity = "super::connection::page_cost(first, last, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditEventsFilter>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<RelayConnection<AuditEvent>> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        domain::check_read(viewer)?;
        let window = PageArgs { first, after, last, before }.window(state.limits())?;
        let filter = filter.unwrap_or_default().into_domain()?;
        let page = domain::list(&state.db, viewer, &filter, &window).await?;
        let total = if wants_total_count(ctx) { Some(domain::count(&state.db, viewer, &filter).await?) } else { None };
        Ok(into_connection(page, total, AuditEvent))
    }
}
