//! Interactions: the touchpoints between patrons and services. Reading follows the roles matrix
//! (staff, admins and partners with `interactions:read` see every row; a patron only their own);
//! recording is single or in idempotent, all-or-nothing batches keyed on `(source, external_id)`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, SubsecRound, Utc};
use entity::{
    enums::{Channel, InteractionKind, PatronStatus, PatronType},
    interaction, patron, service,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, Iterable, Order, PaginatorTrait, QueryFilter,
    QuerySelect, QueryTrait, RuntimeErr, SqlErr, TransactionOptions, TransactionSession, TransactionTrait,
    sea_query::{Alias, Asterisk, Expr, ExprTrait, Func, Query, SelectStatement, WindowStatement},
};
use uuid::Uuid;

use super::{
    pagination::{Cursor, Keyset, Page, PageWindow, SortDirection, SortValue},
    validation,
};
use crate::{
    auth::{Capability, Viewer},
    error::{AppError, AppResult},
};

/// How far in the future an interaction may be dated (clocks of other systems drift).
const FUTURE_TOLERANCE_MINUTES: i64 = 5;
/// Bind parameters per statement: under SQLite's 32766 and PostgreSQL's 65535.
const MAX_BIND_PARAMS: usize = 30_000;
/// Rounds before a batch that keeps meeting a concurrent writer of the same keys gives up.
const RECORD_ATTEMPTS: usize = 3;

/// Which interactions to list. Times are half-open: `[occurred_from, occurred_to)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct InteractionFilter {
    pub patron_id: Option<Uuid>,
    pub service_id: Option<Uuid>,
    pub kinds: Vec<InteractionKind>,
    pub channels: Vec<Channel>,
    pub occurred_from: Option<DateTime<Utc>>,
    pub occurred_to: Option<DateTime<Utc>>,
    pub branch: Option<String>,
    pub has_rating: Option<bool>,
}

/// A filter with the viewer's row rules applied (a patron's forced to their own rows). Only
/// [`visible`] makes one, so batched loaders that have no viewer cannot skip the rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VisibleFilter(InteractionFilter);

impl VisibleFilter {
    pub fn filter(&self) -> &InteractionFilter {
        &self.0
    }
}

/// Whose interactions a nested connection lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InteractionOwner {
    Patron(Uuid),
    Service(Uuid),
}

/// The kind of owner, without the id: nested pages of many owners of one kind share a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerKind {
    Patron,
    Service,
}

impl InteractionOwner {
    pub fn kind(self) -> OwnerKind {
        match self {
            InteractionOwner::Patron(_) => OwnerKind::Patron,
            InteractionOwner::Service(_) => OwnerKind::Service,
        }
    }

    pub fn id(self) -> Uuid {
        match self {
            InteractionOwner::Patron(id) | InteractionOwner::Service(id) => id,
        }
    }
}

impl OwnerKind {
    fn column(self) -> interaction::Column {
        match self {
            OwnerKind::Patron => interaction::Column::PatronId,
            OwnerKind::Service => interaction::Column::ServiceId,
        }
    }

    fn owner_of(self, model: &interaction::Model) -> Option<Uuid> {
        match self {
            OwnerKind::Patron => model.patron_id,
            OwnerKind::Service => Some(model.service_id),
        }
    }
}

/// A position in the `(occurred_at, id)` order, as carried by a cursor.
pub type Position = (DateTime<Utc>, Uuid);

/// One interaction to record.
#[derive(Debug, Clone)]
pub struct NewInteraction {
    /// `None` for an anonymous (walk-in) interaction, which then needs `patron_type`.
    pub patron_id: Option<Uuid>,
    pub service_id: Uuid,
    /// Used only when there is no patron; otherwise the patron's current type is snapshotted.
    pub patron_type: Option<PatronType>,
    pub kind: InteractionKind,
    pub channel: Channel,
    /// Defaults to now.
    pub occurred_at: Option<DateTime<Utc>>,
    pub branch: Option<String>,
    pub staff_member: Option<String>,
    pub rating: Option<i32>,
    pub comment: Option<String>,
    pub staff_notes: Option<String>,
    pub source: Option<String>,
    pub external_id: Option<String>,
}

/// What happened to one input item of a batch.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Position of the item in the input.
    pub index: usize,
    /// The stored row: the new one, or the one already present under the same key.
    pub interaction: interaction::Model,
    /// `false` when `(source, external_id)` was already present (stored earlier, or earlier in
    /// the same batch).
    pub created: bool,
}

// ----- reading -------------------------------------------------------------------------------

/// Apply the roles matrix to a filter: staff, admins and partners with `interactions:read` see
/// every row; a patron only their own (naming another patron is refused); others are denied.
pub fn visible(viewer: &Viewer, mut filter: InteractionFilter) -> AppResult<VisibleFilter> {
    if viewer.can(Capability::ReadInteractions) {
        return Ok(VisibleFilter(filter));
    }
    if let Some(me) = viewer.patron_id() {
        if filter.patron_id.is_some_and(|other| other != me) {
            return Err(viewer.denied("read another patron's interactions"));
        }
        filter.patron_id = Some(me);
        return Ok(VisibleFilter(filter));
    }
    Err(viewer.denied("read interactions"))
}

/// Refuse viewers who may read no interaction at all (before looking anything up).
pub fn require_read(viewer: &Viewer) -> AppResult<()> {
    if viewer.can(Capability::ReadInteractions) || viewer.patron_id().is_some() {
        Ok(())
    } else {
        Err(viewer.denied("read interactions"))
    }
}

/// Whether this viewer may see this row.
pub fn check_visible(viewer: &Viewer, model: &interaction::Model) -> AppResult<()> {
    if viewer.can(Capability::ReadInteractions) {
        return Ok(());
    }
    match viewer.patron_id() {
        Some(me) if model.patron_id == Some(me) => Ok(()),
        Some(_) => Err(viewer.denied("read another patron's interactions")),
        None => Err(viewer.denied("read interactions")),
    }
}

/// Check filter values that are not caught by types.
pub fn validate_filter(filter: &InteractionFilter, field: &str) -> AppResult<()> {
    if let (Some(from), Some(to)) = (filter.occurred_from, filter.occurred_to)
        && to < from
    {
        return Err(AppError::bad_field(
            format!("{field}.occurredTo"),
            "`occurredTo` must not be before `occurredFrom`",
        ));
    }
    Ok(())
}

fn condition(filter: &InteractionFilter) -> Condition {
    let mut cond = Condition::all();
    if let Some(patron_id) = filter.patron_id {
        cond = cond.add(interaction::Column::PatronId.eq(patron_id));
    }
    if let Some(service_id) = filter.service_id {
        cond = cond.add(interaction::Column::ServiceId.eq(service_id));
    }
    if !filter.kinds.is_empty() {
        cond = cond.add(interaction::Column::Kind.is_in(filter.kinds.iter().copied()));
    }
    if !filter.channels.is_empty() {
        cond = cond.add(interaction::Column::Channel.is_in(filter.channels.iter().copied()));
    }
    if let Some(from) = filter.occurred_from {
        cond = cond.add(interaction::Column::OccurredAt.gte(from));
    }
    if let Some(to) = filter.occurred_to {
        cond = cond.add(interaction::Column::OccurredAt.lt(to));
    }
    if let Some(branch) = filter.branch.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        cond = cond.add(interaction::Column::Branch.eq(branch));
    }
    match filter.has_rating {
        Some(true) => cond = cond.add(interaction::Column::Rating.is_not_null()),
        Some(false) => cond = cond.add(interaction::Column::Rating.is_null()),
        None => {}
    }
    cond
}

fn keyset(direction: SortDirection) -> Keyset {
    Keyset::new(Expr::col(interaction::Column::OccurredAt), Expr::col(interaction::Column::Id), direction)
}

pub fn cursor(model: &interaction::Model) -> Cursor {
    Cursor::new(SortValue::Time(model.occurred_at), model.id)
}

/// Newest first by default; `Asc` lists oldest first. Ties on the time are broken by id.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &VisibleFilter,
    direction: SortDirection,
    window: &PageWindow,
) -> AppResult<Page<interaction::Model>> {
    window.time_position()?;
    let select = interaction::Entity::find().filter(condition(filter.filter()));
    keyset(direction).fetch(db, select, window, cursor).await
}

pub async fn count(db: &impl ConnectionTrait, filter: &VisibleFilter) -> AppResult<u64> {
    Ok(interaction::Entity::find().filter(condition(filter.filter())).count(db).await?)
}

pub async fn get(db: &impl ConnectionTrait, viewer: &Viewer, id: Uuid) -> AppResult<interaction::Model> {
    require_read(viewer)?;
    let model = interaction::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::not_found("interaction"))?;
    check_visible(viewer, &model)?;
    Ok(model)
}

/// Interactions by id, for loaders (no access check: callers check each row).
pub async fn by_ids(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<interaction::Model>> {
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_BIND_PARAMS) {
        rows.extend(
            interaction::Entity::find().filter(interaction::Column::Id.is_in(chunk.iter().copied())).all(db).await?,
        );
    }
    Ok(rows)
}

/// The windowed statement behind [`pages_of`]: every owner's first `limit + 1` rows after the
/// cursor, numbered per owner with `ROW_NUMBER() OVER (PARTITION BY owner ORDER BY ..)`.
fn pages_statement(
    kind: OwnerKind,
    owner_ids: &[Uuid],
    filter: &VisibleFilter,
    window: &PageWindow,
    after: Option<Position>,
) -> SelectStatement {
    let owner_col = kind.column();
    // Nested connections list newest first; `last`/`before` walk the same order backwards.
    let direction = if window.backward { Order::Asc } else { Order::Desc };
    let mut select = interaction::Entity::find()
        .filter(owner_col.is_in(owner_ids.iter().copied()))
        .filter(condition(filter.filter()));
    if let Some((time, id)) = after {
        let at = Expr::col(interaction::Column::OccurredAt);
        let by_id = Expr::col(interaction::Column::Id);
        let beyond = if window.backward {
            at.clone().gt(time).or(at.eq(time).and(by_id.gt(id)))
        } else {
            at.clone().lt(time).or(at.eq(time).and(by_id.lt(id)))
        };
        select = select.filter(beyond);
    }
    let mut inner = select.into_query();
    let mut partition = WindowStatement::partition_by(owner_col);
    partition.order_by(interaction::Column::OccurredAt, direction.clone()).order_by(interaction::Column::Id, direction);
    inner.expr_window_as(Func::cust("ROW_NUMBER"), partition, Alias::new("rn"));
    let limit = i64::try_from(window.limit.saturating_add(1)).unwrap_or(i64::MAX);
    Query::select()
        .column(Asterisk)
        .from_subquery(inner, Alias::new("numbered"))
        .and_where(Expr::col(Alias::new("rn")).lte(limit))
        .order_by(Alias::new(owner_col_name(kind)), Order::Asc)
        .order_by(Alias::new("rn"), Order::Asc)
        .to_owned()
}

fn owner_col_name(kind: OwnerKind) -> &'static str {
    match kind {
        OwnerKind::Patron => "patron_id",
        OwnerKind::Service => "service_id",
    }
}

/// One page of interactions for each of many owners, newest first, in ONE statement. `filter`
/// must already carry the viewer's row rules. Owners without rows get an empty page.
pub async fn pages_of(
    db: &impl ConnectionTrait,
    kind: OwnerKind,
    owner_ids: &[Uuid],
    filter: &VisibleFilter,
    window: &PageWindow,
) -> AppResult<HashMap<Uuid, Page<interaction::Model>>> {
    let after = window.time_position()?;
    let mut grouped: HashMap<Uuid, Vec<interaction::Model>> = owner_ids.iter().map(|id| (*id, Vec::new())).collect();
    if window.limit > 0 {
        for chunk in owner_ids.chunks(MAX_BIND_PARAMS / 2) {
            let statement = pages_statement(kind, chunk, filter, window, after);
            let stmt = db.get_database_backend().build(&statement);
            let rows = interaction::Entity::find().from_raw_sql(stmt).all(db).await?;
            for row in rows {
                if let Some(rows) = kind.owner_of(&row).and_then(|owner| grouped.get_mut(&owner)) {
                    rows.push(row);
                }
            }
        }
    }
    let keyset = keyset(SortDirection::Desc);
    Ok(grouped.into_iter().map(|(owner, rows)| (owner, keyset.finish(rows, window, cursor))).collect())
}

/// How many visible interactions each owner has, in one `GROUP BY` statement.
pub async fn counts_of(
    db: &impl ConnectionTrait,
    kind: OwnerKind,
    owner_ids: &[Uuid],
    filter: &VisibleFilter,
) -> AppResult<HashMap<Uuid, u64>> {
    let owner_col = kind.column();
    let mut counts: HashMap<Uuid, u64> = owner_ids.iter().map(|id| (*id, 0)).collect();
    for chunk in owner_ids.chunks(MAX_BIND_PARAMS / 2) {
        let rows: Vec<(Option<Uuid>, i64)> = interaction::Entity::find()
            .select_only()
            .column(owner_col)
            .column_as(Expr::col(interaction::Column::Id).count(), "n")
            .filter(owner_col.is_in(chunk.iter().copied()))
            .filter(condition(filter.filter()))
            .group_by(owner_col)
            .into_tuple()
            .all(db)
            .await?;
        for (owner, n) in rows {
            if let Some(owner) = owner {
                counts.insert(owner, u64::try_from(n).unwrap_or_default());
            }
        }
    }
    Ok(counts)
}

// ----- recording -----------------------------------------------------------------------------

/// Refuse viewers who may not record interactions (before parsing their input).
pub fn require_write(viewer: &Viewer) -> AppResult<()> {
    viewer.require(Capability::WriteInteractions)
}

/// Refuse an oversized batch, naming the list.
pub fn check_batch_size(len: usize, max: usize) -> AppResult<()> {
    if len > max {
        Err(AppError::bad_field(
            "input.interactions",
            format!("at most {max} interactions per call; got {len}: split the batch"),
        ))
    } else {
        Ok(())
    }
}

/// Record one interaction. With a `(source, external_id)` that is already stored, nothing is
/// written and the stored row is returned (`created = false`), so a retried call is harmless.
pub async fn record<C>(db: &C, viewer: &Viewer, input: NewInteraction) -> AppResult<Recorded>
where
    C: ConnectionTrait + TransactionTrait,
{
    let mut recorded = record_items(db, viewer, vec![("input".to_owned(), input)]).await?;
    recorded.pop().ok_or_else(|| AppError::internal(anyhow::anyhow!("recording one interaction returned nothing")))
}

/// Record a batch all-or-nothing, idempotent on `(source, external_id)`: items whose key is
/// already stored, or repeats an earlier item of the batch, are reported as already present.
pub async fn record_many<C>(
    db: &C,
    viewer: &Viewer,
    inputs: Vec<NewInteraction>,
    max_batch: usize,
) -> AppResult<Vec<Recorded>>
where
    C: ConnectionTrait + TransactionTrait,
{
    require_write(viewer)?;
    check_batch_size(inputs.len(), max_batch)?;
    let items = inputs.into_iter().enumerate().map(|(i, input)| (format!("input.interactions[{i}]"), input)).collect();
    record_items(db, viewer, items).await
}

/// One input item after the checks that need no database.
struct Checked {
    field: String,
    patron_id: Option<Uuid>,
    service_id: Uuid,
    patron_type: Option<PatronType>,
    kind: InteractionKind,
    channel: Channel,
    occurred_at: DateTime<Utc>,
    branch: Option<String>,
    staff_member: Option<String>,
    rating: Option<i16>,
    comment: Option<String>,
    staff_notes: Option<String>,
    key: Option<(String, String)>,
}

fn check_item(field: &str, input: NewInteraction, now: DateTime<Utc>) -> AppResult<Checked> {
    let f = |name: &str| format!("{field}.{name}");
    if input.patron_id.is_none() && input.patron_type.is_none() {
        return Err(AppError::bad_field(f("patronType"), "an interaction without a patron needs a `patronType`"));
    }
    let occurred_at = input.occurred_at.map(|t| t.trunc_subsecs(6)).unwrap_or(now);
    if occurred_at > now + Duration::minutes(FUTURE_TOLERANCE_MINUTES) {
        return Err(AppError::bad_field(
            f("occurredAt"),
            format!("`occurredAt` may not be more than {FUTURE_TOLERANCE_MINUTES} minutes in the future"),
        ));
    }
    let rating = input.rating.map(|r| validation::rating(r, &f("rating"))).transpose()?;
    let branch = validation::optional_text(input.branch.as_deref(), &f("branch"), 100)?;
    let staff_member = validation::optional_text(input.staff_member.as_deref(), &f("staffMember"), 200)?;
    let comment = validation::optional_text(input.comment.as_deref(), &f("comment"), 2_000)?;
    let staff_notes = validation::optional_text(input.staff_notes.as_deref(), &f("staffNotes"), 5_000)?;
    let source = validation::optional_text(input.source.as_deref(), &f("source"), 200)?;
    let external_id = validation::optional_text(input.external_id.as_deref(), &f("externalId"), 200)?;
    let key = match (source, external_id) {
        (Some(source), Some(external_id)) => Some((source, external_id)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(AppError::bad_field(f("externalId"), "`source` and `externalId` go together: give both"));
        }
        (None, Some(_)) => {
            return Err(AppError::bad_field(f("source"), "`source` and `externalId` go together: give both"));
        }
    };
    Ok(Checked {
        field: field.to_owned(),
        patron_id: input.patron_id,
        service_id: input.service_id,
        patron_type: input.patron_type,
        kind: input.kind,
        channel: input.channel,
        occurred_at,
        branch,
        staff_member,
        rating,
        comment,
        staff_notes,
        key,
    })
}

async fn record_items<C>(db: &C, viewer: &Viewer, items: Vec<(String, NewInteraction)>) -> AppResult<Vec<Recorded>>
where
    C: ConnectionTrait + TransactionTrait,
{
    require_write(viewer)?;
    if items.iter().any(|(_, i)| i.staff_notes.as_deref().is_some_and(|n| !n.trim().is_empty()))
        && !viewer.can(Capability::ReadStaffNotes)
    {
        return Err(viewer.denied("write staff notes"));
    }
    if items.is_empty() {
        return Ok(Vec::new());
    }
    // Microseconds: what PostgreSQL keeps, so the returned row equals the stored one.
    let now = Utc::now().trunc_subsecs(6);
    let checked =
        items.into_iter().map(|(field, input)| check_item(&field, input, now)).collect::<AppResult<Vec<_>>>()?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match insert_batch(db, &checked, now).await {
            Ok(recorded) => return Ok(recorded),
            // A concurrent call stored some of the same keys between our check and our insert
            // (or the database chose us as a deadlock victim): everything was rolled back; the
            // next round sees the other call's rows as already present.
            Err(BatchError::Db(err)) if is_retryable(&err) && attempt < RECORD_ATTEMPTS => {
                tracing::debug!(attempt, error = %err, "interaction batch met a concurrent writer; retrying");
            }
            Err(BatchError::Db(err)) if is_retryable(&err) => {
                return Err(AppError::conflict(
                    "the same interactions are being recorded concurrently; retry the call",
                ));
            }
            Err(BatchError::Db(err)) => return Err(err.into()),
            Err(BatchError::App(err)) => return Err(err),
        }
    }
}

enum BatchError {
    App(AppError),
    Db(DbErr),
}

impl From<DbErr> for BatchError {
    fn from(err: DbErr) -> Self {
        BatchError::Db(err)
    }
}

impl From<AppError> for BatchError {
    fn from(err: AppError) -> Self {
        BatchError::App(err)
    }
}

/// Errors that a fresh round can cure: a unique violation from a concurrent insert of the same
/// key, a PostgreSQL deadlock or serialization failure, SQLite busy or locked.
fn is_retryable(err: &DbErr) -> bool {
    if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
        return true;
    }
    if let DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) = err
        && let sea_orm::sqlx::Error::Database(db) = e.as_ref()
    {
        return matches!(db.code().as_deref(), Some("40P01" | "40001" | "5" | "6" | "261" | "262" | "517"));
    }
    false
}

/// One all-or-nothing round: look up referenced rows and existing keys, insert the rest.
async fn insert_batch<C>(db: &C, items: &[Checked], now: DateTime<Utc>) -> Result<Vec<Recorded>, BatchError>
where
    C: ConnectionTrait + TransactionTrait,
{
    // IMMEDIATE on SQLite takes the write lock up front, so concurrent batches queue (busy
    // timeout) instead of failing to upgrade a read snapshot. Ignored by PostgreSQL.
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let txn = db.begin_with_options(options).await?;

    let patron_ids = distinct(items.iter().filter_map(|i| i.patron_id));
    let mut patrons: HashMap<Uuid, patron::Model> = HashMap::with_capacity(patron_ids.len());
    for chunk in patron_ids.chunks(MAX_BIND_PARAMS) {
        let rows = patron::Entity::find().filter(patron::Column::Id.is_in(chunk.iter().copied())).all(&txn).await?;
        patrons.extend(rows.into_iter().map(|p| (p.id, p)));
    }
    let service_ids = distinct(items.iter().map(|i| i.service_id));
    let mut services: HashSet<Uuid> = HashSet::with_capacity(service_ids.len());
    for chunk in service_ids.chunks(MAX_BIND_PARAMS) {
        let rows: Vec<Uuid> = service::Entity::find()
            .select_only()
            .column(service::Column::Id)
            .filter(service::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(&txn)
            .await?;
        services.extend(rows);
    }
    let mut patron_types = Vec::with_capacity(items.len());
    for item in items {
        let patron_type = match item.patron_id {
            Some(id) => match patrons.get(&id) {
                None => {
                    return Err(
                        AppError::bad_field(format!("{}.patronId", item.field), "no patron with this id").into()
                    );
                }
                Some(p) if p.status == PatronStatus::Erased => {
                    return Err(AppError::bad_field(
                        format!("{}.patronId", item.field),
                        "this patron has been erased; record the interaction without a patron",
                    )
                    .into());
                }
                Some(p) => p.patron_type,
            },
            // `check_item` made sure anonymous items carry a type.
            None => item.patron_type.unwrap_or(PatronType::Public),
        };
        if !services.contains(&item.service_id) {
            return Err(AppError::bad_field(format!("{}.serviceId", item.field), "no service with this id").into());
        }
        patron_types.push(patron_type);
    }

    let existing = existing_by_key(&txn, items).await?;
    let mut by_key: HashMap<(String, String), interaction::Model> = existing;
    let mut recorded = Vec::with_capacity(items.len());
    let mut fresh = Vec::new();
    for (index, (item, patron_type)) in items.iter().zip(patron_types).enumerate() {
        if let Some(present) = item.key.as_ref().and_then(|k| by_key.get(k)) {
            recorded.push(Recorded { index, interaction: present.clone(), created: false });
            continue;
        }
        let model = interaction::Model {
            id: Uuid::now_v7(),
            patron_id: item.patron_id,
            service_id: item.service_id,
            patron_type,
            kind: item.kind,
            channel: item.channel,
            occurred_at: item.occurred_at,
            branch: item.branch.clone(),
            staff_member: item.staff_member.clone(),
            rating: item.rating,
            comment: item.comment.clone(),
            staff_notes: item.staff_notes.clone(),
            source: item.key.as_ref().map(|k| k.0.clone()),
            external_id: item.key.as_ref().map(|k| k.1.clone()),
            created_at: now,
            updated_at: now,
        };
        if let Some(key) = &item.key {
            by_key.insert(key.clone(), model.clone());
        }
        fresh.push(model.clone());
        recorded.push(Recorded { index, interaction: model, created: true });
    }

    // Insert in key order so that two batches sharing keys wait on each other instead of
    // deadlocking (PostgreSQL locks each new key of the unique index as it goes).
    fresh.sort_by(|a, b| (&a.source, &a.external_id).cmp(&(&b.source, &b.external_id)));
    let columns = interaction::Column::iter().count().max(1);
    for chunk in fresh.chunks((MAX_BIND_PARAMS / columns).max(1)) {
        let rows = chunk.iter().cloned().map(interaction::ActiveModel::from);
        interaction::Entity::insert_many(rows).exec_without_returning(&txn).await?;
    }
    super::rollups::apply(&txn, &fresh).await?;
    txn.commit().await?;
    Ok(recorded)
}

/// Stored rows whose `(source, external_id)` is one of the batch's keys, one query per chunk:
/// `(source, external_id) IN (SELECT * FROM (VALUES (?, ?), ..))`, which both databases accept.
async fn existing_by_key(
    db: &impl ConnectionTrait,
    items: &[Checked],
) -> Result<HashMap<(String, String), interaction::Model>, DbErr> {
    let keys: Vec<(String, String)> = {
        let mut seen = HashSet::new();
        items.iter().filter_map(|i| i.key.clone()).filter(|k| seen.insert(k.clone())).collect()
    };
    let mut found = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(MAX_BIND_PARAMS / 2) {
        let values = Query::select().column(Asterisk).from_values(chunk.iter().cloned(), Alias::new("k")).to_owned();
        let key_cols = Expr::tuple([
            Expr::col((interaction::Entity, interaction::Column::Source)),
            Expr::col((interaction::Entity, interaction::Column::ExternalId)),
        ]);
        let rows = interaction::Entity::find().filter(key_cols.in_subquery(values)).all(db).await?;
        for row in rows {
            if let (Some(source), Some(external_id)) = (row.source.clone(), row.external_id.clone()) {
                found.insert((source, external_id), row);
            }
        }
    }
    Ok(found)
}

fn distinct(ids: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
    let mut seen = HashSet::new();
    ids.filter(|id| seen.insert(*id)).collect()
}

#[cfg(test)]
mod tests {
    use sea_orm::DbBackend;

    use super::*;
    use crate::auth::{Principal, Scope};

    fn window(limit: u64) -> PageWindow {
        PageWindow { limit, backward: false, cursor: None }
    }

    #[test]
    fn nested_pages_are_one_windowed_statement_on_both_databases() {
        let filter = VisibleFilter(InteractionFilter { kinds: vec![InteractionKind::Loan], ..Default::default() });
        let ids = [Uuid::now_v7(), Uuid::now_v7()];
        let after = Some((Utc::now(), Uuid::now_v7()));
        let statement = pages_statement(OwnerKind::Patron, &ids, &filter, &window(10), after);
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            let sql = backend.build(&statement).to_string();
            assert!(sql.contains("ROW_NUMBER() OVER ( PARTITION BY \"patron_id\" ORDER BY"), "{sql}");
            assert!(sql.contains("\"rn\" <= 11"), "{sql}");
        }
        let placeholders = DbBackend::Postgres.build(&statement).sql;
        assert!(placeholders.contains("$1"), "{placeholders}");
    }

    #[test]
    fn patrons_are_confined_to_their_own_rows() {
        let me = Uuid::now_v7();
        let patron = Viewer::new(Principal::Patron { patron_id: me });
        let forced = visible(&patron, InteractionFilter::default()).map(|f| f.filter().patron_id);
        assert_eq!(forced.ok(), Some(Some(me)));
        let other = InteractionFilter { patron_id: Some(Uuid::now_v7()), ..Default::default() };
        assert!(matches!(visible(&patron, other.clone()), Err(AppError::Forbidden(_))));
        let partner =
            Viewer::new(Principal::Partner { client_id: "p".into(), scopes: [Scope::InteractionsRead].into() });
        assert!(visible(&partner, other.clone()).is_ok());
        assert!(matches!(visible(&Viewer::anonymous(), other), Err(AppError::Unauthenticated(_))));
    }

    #[test]
    fn items_are_checked_field_by_field() {
        let now = Utc::now();
        let base = NewInteraction {
            patron_id: None,
            service_id: Uuid::now_v7(),
            patron_type: Some(PatronType::Public),
            kind: InteractionKind::Visit,
            channel: Channel::InPerson,
            occurred_at: None,
            branch: None,
            staff_member: None,
            rating: None,
            comment: None,
            staff_notes: None,
            source: None,
            external_id: None,
        };
        let field_of = |input: NewInteraction| match check_item("input", input, now) {
            Err(AppError::BadInput { field, .. }) => field,
            _ => None,
        };
        assert!(check_item("input", base.clone(), now).is_ok());
        assert_eq!(field_of(NewInteraction { patron_type: None, ..base.clone() }).as_deref(), Some("input.patronType"));
        assert_eq!(field_of(NewInteraction { rating: Some(0), ..base.clone() }).as_deref(), Some("input.rating"));
        let later = now + Duration::minutes(10);
        assert_eq!(
            field_of(NewInteraction { occurred_at: Some(later), ..base.clone() }).as_deref(),
            Some("input.occurredAt")
        );
        assert_eq!(
            field_of(NewInteraction { source: Some("lms".into()), ..base.clone() }).as_deref(),
            Some("input.externalId")
        );
        assert_eq!(
            field_of(NewInteraction { comment: Some("x".repeat(2_001)), ..base }).as_deref(),
            Some("input.comment")
        );
    }
}
