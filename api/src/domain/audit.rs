//! The audit trail: who read or changed which patron's data, when, in which request.
//!
//! What is recorded: every read of a patron's record or interactions by STAFF, ADMIN or PARTNER
//! viewers (a patron reading their own data is not recorded: they are its owner), and every
//! write to patron data by anyone. List pages record one event per patron returned
//! (`LIST_PATRONS`, `READ_INTERACTIONS`), so "who saw patron X" is one filter on
//! `target_patron_id`. Events hold ids, roles, actions and counts, never personal data, and are
//! kept after the patron is erased.
//!
//! Recording must not slow reads: events go through a bounded queue to a background writer
//! that inserts them in batches (every 200 ms or 500 events). A full queue is not a reason to
//! lose events: the caller then writes synchronously, with a warning. On graceful shutdown the
//! queue is drained ([`AuditLog::shutdown`]); [`AuditLog::flush`] waits until every event queued
//! so far is stored.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use entity::audit_event::{self, ActorRole, AuditAction};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseConnectionType, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, sea_query::Expr,
};
use tokio::sync::{
    mpsc::{self, error::TrySendError},
    oneshot,
};
use uuid::Uuid;

use super::pagination::{Cursor, Keyset, Page, PageWindow, SortDirection, SortValue};
use crate::{
    auth::{Capability, Role, Viewer},
    error::{AppError, AppResult},
};

/// Events per insert statement, and the batch size that triggers a write.
const BATCH_SIZE: usize = 500;
/// Longest time an event waits in the queue before it is written.
const BATCH_INTERVAL: Duration = Duration::from_millis(200);
/// Events the queue holds before callers write synchronously.
const QUEUE_CAPACITY: usize = 10_000;
/// Attempts of one batch insert before the batch is given up (and logged).
const WRITE_ATTEMPTS: u32 = 3;

/// The id of one GraphQL request, shared by every event it records. The HTTP layer may attach
/// one to the request data (e.g. from `X-Request-Id`); otherwise the schema makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub Uuid);

impl RequestId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

// ---------------------------------------------------------------------------------------------
// Events

/// The role an event is recorded under; `None` for anonymous viewers (who read nothing).
pub fn actor_role(viewer: &Viewer) -> Option<ActorRole> {
    viewer.role().map(|role| match role {
        Role::Admin => ActorRole::Admin,
        Role::Staff => ActorRole::Staff,
        Role::Patron => ActorRole::Patron,
        Role::Funder => ActorRole::Funder,
        Role::Partner => ActorRole::Partner,
    })
}

/// Whether reads by this viewer are audited: the library's people and partner tools, not the
/// patron reading their own data.
pub fn audits_reads_of(viewer: &Viewer) -> bool {
    matches!(viewer.role(), Some(Role::Staff | Role::Admin | Role::Partner))
}

/// An event by `viewer` (anonymous viewers are recorded as `anonymous`, though they are refused
/// before anything worth auditing happens).
pub fn event(
    viewer: &Viewer,
    action: AuditAction,
    target_patron_id: Option<Uuid>,
    detail: Option<String>,
    request_id: Option<RequestId>,
) -> audit_event::Model {
    audit_event::Model {
        id: Uuid::now_v7(),
        occurred_at: Utc::now().trunc_subsecs(6),
        actor: viewer.subject(),
        actor_role: actor_role(viewer).unwrap_or(ActorRole::System),
        action,
        target_patron_id,
        detail,
        request_id: Some(request_id.unwrap_or_else(RequestId::generate).0),
    }
}

/// An event of a job or operator command (`actor` is `system:<job>`).
pub fn system_event(job: &str, action: AuditAction, detail: String) -> audit_event::Model {
    audit_event::Model {
        id: Uuid::now_v7(),
        occurred_at: Utc::now().trunc_subsecs(6),
        actor: format!("system:{job}"),
        actor_role: ActorRole::System,
        action,
        target_patron_id: None,
        detail: Some(detail),
        request_id: None,
    }
}

/// Insert events now, in statements of [`BATCH_SIZE`] rows; `db` may be a transaction (erasure
/// records its event with the erasure itself).
pub async fn insert_now(db: &impl ConnectionTrait, events: &[audit_event::Model]) -> Result<(), sea_orm::DbErr> {
    for chunk in events.chunks(BATCH_SIZE) {
        let rows = chunk.iter().cloned().map(audit_event::ActiveModel::from);
        audit_event::Entity::insert_many(rows).exec_without_returning(db).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The background writer

enum Message {
    Event(audit_event::Model),
    /// Acknowledge once every event queued before this message is stored.
    Flush(oneshot::Sender<()>),
    /// Drain the queue, store everything, acknowledge, stop.
    Shutdown(oneshot::Sender<()>),
}

/// The handle to the audit writer, held in `AppState`; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<Message>,
    db: DatabaseConnection,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("queued", &(QUEUE_CAPACITY - self.sender.capacity())).finish()
    }
}

/// The same pool without the statement counter: audit batches are background work, written
/// whenever they are due, and must not show up in the statements of whichever request happens
/// to be measured at the time.
fn unmetered(db: &DatabaseConnection) -> DatabaseConnection {
    match &db.inner {
        DatabaseConnectionType::SqlxSqlitePoolConnection(_) => {
            DatabaseConnection::from(db.get_sqlite_connection_pool().clone())
        }
        DatabaseConnectionType::SqlxPostgresPoolConnection(_) => {
            DatabaseConnection::from(db.get_postgres_connection_pool().clone())
        }
        _ => db.clone(),
    }
}

impl AuditLog {
    /// Start the background writer on the current Tokio runtime.
    pub fn start(db: &DatabaseConnection) -> Self {
        let db = unmetered(db);
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run_writer(db.clone(), receiver));
        Self { sender, db }
    }

    /// Queue events for the writer. When the queue is full (or the writer has stopped), the
    /// events are written before returning instead of being dropped; an error then means they
    /// could not be stored, and the caller must not go on as if they were.
    pub async fn record(&self, events: Vec<audit_event::Model>) -> AppResult<()> {
        let mut direct = Vec::new();
        for event in events {
            if let Err(err) = self.sender.try_send(Message::Event(event)) {
                let full = matches!(err, TrySendError::Full(_));
                if let Message::Event(event) = err.into_inner() {
                    if full && direct.is_empty() {
                        tracing::warn!(capacity = QUEUE_CAPACITY, "audit queue full; writing synchronously");
                    }
                    direct.push(event);
                }
            }
        }
        if !direct.is_empty() {
            insert_now(&self.db, &direct)
                .await
                .map_err(|e| AppError::internal(anyhow::Error::new(e).context("cannot write audit events")))?;
        }
        Ok(())
    }

    pub async fn record_one(&self, event: audit_event::Model) -> AppResult<()> {
        self.record(vec![event]).await
    }

    /// Wait until every event queued so far is stored (tests; exports that include the trail).
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.sender.send(Message::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Store everything still queued and stop the writer (graceful shutdown). Events recorded
    /// afterwards are written synchronously.
    pub async fn shutdown(&self) {
        let (ack, done) = oneshot::channel();
        if self.sender.send(Message::Shutdown(ack)).await.is_ok() {
            let _ = done.await;
            tracing::info!("audit log drained");
        }
    }
}

async fn run_writer(db: DatabaseConnection, mut receiver: mpsc::Receiver<Message>) {
    let mut pending: Vec<audit_event::Model> = Vec::with_capacity(BATCH_SIZE);
    let mut ticker = tokio::time::interval(BATCH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = receiver.recv() => match message {
                Some(Message::Event(event)) => {
                    pending.push(event);
                    if pending.len() >= BATCH_SIZE {
                        write_batch(&db, &mut pending).await;
                    }
                }
                Some(Message::Flush(ack)) => {
                    write_batch(&db, &mut pending).await;
                    let _ = ack.send(());
                }
                Some(Message::Shutdown(ack)) => {
                    receiver.close();
                    let mut acks = vec![ack];
                    while let Some(message) = receiver.recv().await {
                        match message {
                            Message::Event(event) => pending.push(event),
                            Message::Flush(ack) | Message::Shutdown(ack) => acks.push(ack),
                        }
                    }
                    write_batch(&db, &mut pending).await;
                    for ack in acks {
                        let _ = ack.send(());
                    }
                    return;
                }
                None => {
                    write_batch(&db, &mut pending).await;
                    return;
                }
            },
            _ = ticker.tick() => {
                if !pending.is_empty() {
                    write_batch(&db, &mut pending).await;
                }
            }
        }
    }
}

/// Write and clear `pending`, retrying a failed insert; a batch that still fails is logged with
/// its size (the events themselves carry no personal data, but are lost).
async fn write_batch(db: &DatabaseConnection, pending: &mut Vec<audit_event::Model>) {
    if pending.is_empty() {
        return;
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        match insert_now(db, pending).await {
            Ok(()) => {
                tracing::debug!(events = pending.len(), "audit events written");
                pending.clear();
                return;
            }
            Err(err) if attempt < WRITE_ATTEMPTS => {
                tracing::warn!(error = %err, attempt, events = pending.len(), "audit write failed; retrying");
                tokio::time::sleep(BATCH_INTERVAL * attempt).await;
            }
            Err(err) => {
                tracing::error!(error = %err, events = pending.len(), "audit events could not be written");
                pending.clear();
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the trail (admins)

/// Which events to list. Times are half-open: `[from, to)`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub target_patron_id: Option<Uuid>,
    pub actions: Vec<AuditAction>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Reading the audit log is for admins only.
pub fn check_read(viewer: &Viewer) -> AppResult<()> {
    if viewer.can(Capability::Administer) { Ok(()) } else { Err(viewer.denied("read the audit log")) }
}

fn check_filter(filter: &AuditFilter) -> AppResult<()> {
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && to < from
    {
        return Err(AppError::bad_field("filter.to", "`to` must not be before `from`"));
    }
    if filter.actor.as_deref().is_some_and(|a| a.chars().count() > 200) {
        return Err(AppError::bad_field("filter.actor", "`actor` may be at most 200 characters"));
    }
    Ok(())
}

fn condition(filter: &AuditFilter) -> Condition {
    let mut cond = Condition::all();
    if let Some(actor) = filter.actor.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        cond = cond.add(audit_event::Column::Actor.eq(actor));
    }
    if let Some(target) = filter.target_patron_id {
        cond = cond.add(audit_event::Column::TargetPatronId.eq(target));
    }
    if !filter.actions.is_empty() {
        cond = cond.add(audit_event::Column::Action.is_in(filter.actions.iter().copied()));
    }
    if let Some(from) = filter.from {
        cond = cond.add(audit_event::Column::OccurredAt.gte(from));
    }
    if let Some(to) = filter.to {
        cond = cond.add(audit_event::Column::OccurredAt.lt(to));
    }
    cond
}

pub fn cursor(model: &audit_event::Model) -> Cursor {
    Cursor::new(SortValue::Time(model.occurred_at), model.id)
}

fn check_cursor(window: &PageWindow) -> AppResult<()> {
    match &window.cursor {
        None | Some(Cursor { key: SortValue::Time(_), .. }) => Ok(()),
        Some(_) => Err(AppError::bad_field(if window.backward { "before" } else { "after" }, "invalid cursor")),
    }
}

/// Newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    filter: &AuditFilter,
    window: &PageWindow,
) -> AppResult<Page<audit_event::Model>> {
    check_read(viewer)?;
    check_filter(filter)?;
    check_cursor(window)?;
    let keyset = Keyset::new(
        Expr::col(audit_event::Column::OccurredAt),
        Expr::col(audit_event::Column::Id),
        SortDirection::Desc,
    );
    keyset.fetch(db, audit_event::Entity::find().filter(condition(filter)), window, cursor).await
}

pub async fn count(db: &impl ConnectionTrait, viewer: &Viewer, filter: &AuditFilter) -> AppResult<u64> {
    check_read(viewer)?;
    check_filter(filter)?;
    Ok(audit_event::Entity::find().filter(condition(filter)).count(db).await?)
}

/// Every event about one patron, oldest first (for the export of their data).
pub async fn about_patron(db: &impl ConnectionTrait, patron_id: Uuid) -> AppResult<Vec<audit_event::Model>> {
    Ok(audit_event::Entity::find()
        .filter(audit_event::Column::TargetPatronId.eq(patron_id))
        .order_by_asc(audit_event::Column::OccurredAt)
        .order_by_asc(audit_event::Column::Id)
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Principal, Scope};

    #[test]
    fn reads_are_audited_for_staff_admins_and_partners_only() {
        let partner = Viewer::new(Principal::Partner { client_id: "p".into(), scopes: [Scope::PatronsRead].into() });
        assert!(audits_reads_of(&partner));
        assert!(audits_reads_of(&Viewer::new(Principal::Staff { account_id: "s".into() })));
        assert!(audits_reads_of(&Viewer::new(Principal::Admin { account_id: "a".into() })));
        assert!(!audits_reads_of(&Viewer::new(Principal::Patron { patron_id: Uuid::now_v7() })));
        assert!(!audits_reads_of(&Viewer::anonymous()));
    }

    #[test]
    fn only_admins_read_the_trail() {
        assert!(check_read(&Viewer::new(Principal::Admin { account_id: "a".into() })).is_ok());
        assert!(matches!(
            check_read(&Viewer::new(Principal::Staff { account_id: "s".into() })),
            Err(AppError::Forbidden(_))
        ));
        assert!(matches!(check_read(&Viewer::anonymous()), Err(AppError::Unauthenticated(_))));
    }

    #[test]
    fn events_name_the_viewer_and_the_request() {
        let staff = Viewer::new(Principal::Staff { account_id: "staff-7".into() });
        let request = RequestId::generate();
        let target = Uuid::now_v7();
        let e = event(&staff, AuditAction::ReadPatron, Some(target), None, Some(request));
        assert_eq!((e.actor.as_str(), e.actor_role, e.target_patron_id), ("staff-7", ActorRole::Staff, Some(target)));
        assert_eq!(e.request_id, Some(request.0));
        let bad = AuditFilter {
            from: Some(Utc::now()),
            to: Some(Utc::now() - chrono::Duration::hours(1)),
            ..Default::default()
        };
        assert!(check_filter(&bad).is_err());
    }
}
