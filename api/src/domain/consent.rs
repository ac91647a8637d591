//! Consent: a patron's decisions on personalisation and marketing per channel, recorded as
//! events (given or withdrawn, when, from which source, under which wording). The current state
//! is the latest event per purpose; a purpose never recorded is not given.
//!
//! This module is the ONLY place that reads or writes consent: later features (recommendations,
//! campaigns) ask [`has_consent`], [`consenting`] or [`current_consents`].

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, SubsecRound, Utc};
/// The purposes and sources, for callers of this module.
pub use entity::enums::{ConsentPurpose, ConsentSource};
use entity::{consent_event, enums::PatronStatus, patron};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    Set,
    sea_query::{Alias, Asterisk, Expr, ExprTrait, Func, OverStatement, Query, SelectStatement, WindowStatement},
};
use uuid::Uuid;

use super::{
    pagination::{Cursor, Keyset, Page, PageWindow, SortDirection, SortValue},
    patrons, validation,
};
use crate::{
    auth::{Capability, Viewer},
    error::{AppError, AppResult},
};

/// Longest consent wording version.
pub const MAX_TEXT_VERSION_LEN: usize = 50;
/// Patron ids per statement (bind parameters stay far below both databases' limits).
const IDS_PER_STATEMENT: usize = 10_000;

/// One decision to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentChange {
    pub purpose: ConsentPurpose,
    pub granted: bool,
    /// The wording version of this decision; the call's version when `None`.
    pub text_version: Option<String>,
}

impl ConsentChange {
    pub fn new(purpose: ConsentPurpose, granted: bool) -> Self {
        Self { purpose, granted, text_version: None }
    }
}

// ---------------------------------------------------------------------------------------------
// Access rules

/// Recording consent on a patron's behalf (staff, admins, partners with `patrons:write`).
pub fn check_write_for_patron(viewer: &Viewer) -> AppResult<()> {
    viewer.require(Capability::WritePatrons)
}

/// The patron recording their own consent: patron tokens only.
pub fn own_patron_id(viewer: &Viewer) -> AppResult<Uuid> {
    viewer.require_authenticated()?;
    viewer.patron_id().ok_or_else(|| viewer.denied("change a patron's own consents (use `updatePatronConsents`)"))
}

/// Reading a patron's consent history: as reading the patron's record (a patron: their own).
pub fn check_read_history(viewer: &Viewer, patron_id: Uuid) -> AppResult<()> {
    patrons::check_read(viewer, patron_id)
}

/// Staff may record decisions they took from the patron or imported; `APP` is the patron's own.
pub fn check_staff_source(source: ConsentSource, field: &str) -> AppResult<ConsentSource> {
    match source {
        ConsentSource::Staff | ConsentSource::Import => Ok(source),
        ConsentSource::App => {
            Err(AppError::bad_field(field, "APP is recorded by the patron in the app; use STAFF or IMPORT"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// The current consent of each patron: the latest event per purpose (by `recorded_at`, then
/// id), in the declaration order of the purposes. Purposes never recorded are absent, and so
/// are patrons without any event.
pub async fn current_consents(
    db: &impl ConnectionTrait,
    patron_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<consent_event::Model>>> {
    let mut out: HashMap<Uuid, Vec<consent_event::Model>> = HashMap::new();
    for chunk in patron_ids.chunks(IDS_PER_STATEMENT) {
        let statement = latest_statement(chunk, None);
        let stmt = db.get_database_backend().build(&statement);
        for row in consent_event::Entity::find().from_raw_sql(stmt).all(db).await? {
            out.entry(row.patron_id).or_default().push(row);
        }
    }
    for events in out.values_mut() {
        events.sort_by_key(|e| ConsentPurpose::ALL.iter().position(|p| *p == e.purpose));
    }
    Ok(out)
}

/// Whether the patron's latest decision on `purpose` is "given".
pub async fn has_consent(db: &impl ConnectionTrait, patron_id: Uuid, purpose: ConsentPurpose) -> AppResult<bool> {
    let latest: Option<bool> = consent_event::Entity::find()
        .select_only()
        .column(consent_event::Column::Granted)
        .filter(consent_event::Column::PatronId.eq(patron_id))
        .filter(consent_event::Column::Purpose.eq(purpose))
        .order_by_desc(consent_event::Column::RecordedAt)
        .order_by_desc(consent_event::Column::Id)
        .limit(1)
        .into_tuple()
        .one(db)
        .await?;
    Ok(latest.unwrap_or(false))
}

/// Which of `patron_ids` currently consent to `purpose` (one statement per 10,000 ids): what a
/// campaign asks before delivering over a channel.
pub async fn consenting(
    db: &impl ConnectionTrait,
    patron_ids: &[Uuid],
    purpose: ConsentPurpose,
) -> AppResult<HashSet<Uuid>> {
    let mut out = HashSet::new();
    for chunk in patron_ids.chunks(IDS_PER_STATEMENT) {
        let statement = latest_statement(chunk, Some(purpose));
        let stmt = db.get_database_backend().build(&statement);
        for row in consent_event::Entity::find().from_raw_sql(stmt).all(db).await? {
            if row.granted {
                out.insert(row.patron_id);
            }
        }
    }
    Ok(out)
}

/// `SELECT * FROM (SELECT .., ROW_NUMBER() OVER (PARTITION BY patron_id, purpose ORDER BY
/// recorded_at DESC, id DESC) AS rn FROM consent_event WHERE ..) WHERE rn = 1`.
fn latest_statement(patron_ids: &[Uuid], purpose: Option<ConsentPurpose>) -> SelectStatement {
    let mut select =
        consent_event::Entity::find().filter(consent_event::Column::PatronId.is_in(patron_ids.iter().copied()));
    if let Some(purpose) = purpose {
        select = select.filter(consent_event::Column::Purpose.eq(purpose));
    }
    let mut inner = select.into_query();
    let mut window = WindowStatement::new();
    window.partition_by_columns([consent_event::Column::PatronId, consent_event::Column::Purpose]);
    window.order_by(consent_event::Column::RecordedAt, Order::Desc).order_by(consent_event::Column::Id, Order::Desc);
    inner.expr_window_as(Func::cust("ROW_NUMBER"), window, Alias::new("rn"));
    Query::select()
        .column(Asterisk)
        .from_subquery(inner, Alias::new("numbered"))
        .and_where(Expr::col(Alias::new("rn")).eq(1))
        .to_owned()
}

fn history_keyset() -> Keyset {
    Keyset::new(Expr::col(consent_event::Column::RecordedAt), Expr::col(consent_event::Column::Id), SortDirection::Desc)
}

pub fn history_cursor(model: &consent_event::Model) -> Cursor {
    Cursor::new(SortValue::Time(model.recorded_at), model.id)
}

/// One page of consent history for each of many patrons, newest first, in ONE windowed
/// statement (for the nested `consentHistory` connection). No access check: the caller checks
/// each patron.
pub async fn history_pages(
    db: &impl ConnectionTrait,
    patron_ids: &[Uuid],
    window: &PageWindow,
) -> AppResult<HashMap<Uuid, Page<consent_event::Model>>> {
    let after = window.time_position()?;
    let mut grouped: HashMap<Uuid, Vec<consent_event::Model>> = patron_ids.iter().map(|id| (*id, Vec::new())).collect();
    if window.limit > 0 {
        for chunk in patron_ids.chunks(IDS_PER_STATEMENT) {
            let statement = history_statement(chunk, window, after);
            let stmt = db.get_database_backend().build(&statement);
            for row in consent_event::Entity::find().from_raw_sql(stmt).all(db).await? {
                if let Some(rows) = grouped.get_mut(&row.patron_id) {
                    rows.push(row);
                }
            }
        }
    }
    let keyset = history_keyset();
    Ok(grouped.into_iter().map(|(id, rows)| (id, keyset.finish(rows, window, history_cursor))).collect())
}

fn history_statement(
    patron_ids: &[Uuid],
    window: &PageWindow,
    after: Option<(DateTime<Utc>, Uuid)>,
) -> SelectStatement {
    // Newest first; `last`/`before` walk the same order backwards.
    let direction = if window.backward { Order::Asc } else { Order::Desc };
    let mut select =
        consent_event::Entity::find().filter(consent_event::Column::PatronId.is_in(patron_ids.iter().copied()));
    if let Some((time, id)) = after {
        let at = Expr::col(consent_event::Column::RecordedAt);
        let by_id = Expr::col(consent_event::Column::Id);
        let beyond = if window.backward {
            at.clone().gt(time).or(at.eq(time).and(by_id.gt(id)))
        } else {
            at.clone().lt(time).or(at.eq(time).and(by_id.lt(id)))
        };
        select = select.filter(beyond);
    }
    let mut inner = select.into_query();
    let mut partition = WindowStatement::partition_by(consent_event::Column::PatronId);
    partition
        .order_by(consent_event::Column::RecordedAt, direction.clone())
        .order_by(consent_event::Column::Id, direction);
    inner.expr_window_as(Func::cust("ROW_NUMBER"), partition, Alias::new("rn"));
    let limit = i64::try_from(window.limit.saturating_add(1)).unwrap_or(i64::MAX);
    Query::select()
        .column(Asterisk)
        .from_subquery(inner, Alias::new("numbered"))
        .and_where(Expr::col(Alias::new("rn")).lte(limit))
        .order_by(Alias::new("patron_id"), Order::Asc)
        .order_by(Alias::new("rn"), Order::Asc)
        .to_owned()
}

/// How many consent events each patron has (one `GROUP BY`), for `totalCount`.
pub async fn history_counts(db: &impl ConnectionTrait, patron_ids: &[Uuid]) -> AppResult<HashMap<Uuid, u64>> {
    let mut counts: HashMap<Uuid, u64> = patron_ids.iter().map(|id| (*id, 0)).collect();
    for chunk in patron_ids.chunks(IDS_PER_STATEMENT) {
        let rows: Vec<(Uuid, i64)> = consent_event::Entity::find()
            .select_only()
            .column(consent_event::Column::PatronId)
            .column_as(Expr::col(consent_event::Column::Id).count(), "n")
            .filter(consent_event::Column::PatronId.is_in(chunk.iter().copied()))
            .group_by(consent_event::Column::PatronId)
            .into_tuple()
            .all(db)
            .await?;
        for (patron_id, n) in rows {
            counts.insert(patron_id, u64::try_from(n).unwrap_or_default());
        }
    }
    Ok(counts)
}

/// Every consent event of one patron, oldest first (for the export).
pub async fn full_history(db: &impl ConnectionTrait, patron_id: Uuid) -> AppResult<Vec<consent_event::Model>> {
    Ok(consent_event::Entity::find()
        .filter(consent_event::Column::PatronId.eq(patron_id))
        .order_by_asc(consent_event::Column::RecordedAt)
        .order_by_asc(consent_event::Column::Id)
        .all(db)
        .await?)
}

/// How many consent events a patron has.
pub async fn count_events(db: &impl ConnectionTrait, patron_id: Uuid) -> AppResult<u64> {
    Ok(consent_event::Entity::find().filter(consent_event::Column::PatronId.eq(patron_id)).count(db).await?)
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Check a list of decisions: at least one when `required`, at most one per purpose, bounded
/// wording versions (each change's own, else `text_version`). Field names follow the GraphQL
/// input: `input.consents`, `input.consents[i].textVersion`, `input.textVersion`.
pub fn validate_changes(
    changes: &[ConsentChange],
    text_version: Option<&str>,
    required: bool,
) -> AppResult<Vec<ConsentChange>> {
    if required && changes.is_empty() {
        return Err(AppError::bad_field("input.consents", "give at least one consent decision"));
    }
    let default_version = validation::optional_text(text_version, "input.textVersion", MAX_TEXT_VERSION_LEN)?;
    let mut out: Vec<ConsentChange> = Vec::with_capacity(changes.len());
    for (i, change) in changes.iter().enumerate() {
        if out.iter().any(|c| c.purpose == change.purpose) {
            return Err(AppError::bad_field("input.consents", format!("{} is given more than once", change.purpose)));
        }
        let own = validation::optional_text(
            change.text_version.as_deref(),
            &format!("input.consents[{i}].textVersion"),
            MAX_TEXT_VERSION_LEN,
        )?;
        out.push(ConsentChange {
            purpose: change.purpose,
            granted: change.granted,
            text_version: own.or_else(|| default_version.clone()),
        });
    }
    Ok(out)
}

/// Record decisions for a patron, all at one time, and return the new events. `db` may be the
/// caller's transaction (patron create and update record their consents with the patron). The
/// patron must exist and not be erased. Validates as [`validate_changes`] (an empty list
/// records nothing).
pub async fn record(
    db: &impl ConnectionTrait,
    patron_id: Uuid,
    changes: &[ConsentChange],
    source: ConsentSource,
    text_version: Option<&str>,
) -> AppResult<Vec<consent_event::Model>> {
    let changes = validate_changes(changes, text_version, false)?;
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let status: Option<PatronStatus> =
        patron::Entity::find_by_id(patron_id).select_only().column(patron::Column::Status).into_tuple().one(db).await?;
    match status {
        None => return Err(AppError::not_found("patron")),
        Some(PatronStatus::Erased) => {
            return Err(AppError::conflict("this patron has been erased; no consent can be recorded"));
        }
        Some(_) => {}
    }
    // Microseconds: what PostgreSQL keeps, so the returned rows equal the stored ones.
    let now = Utc::now().trunc_subsecs(6);
    let rows: Vec<consent_event::Model> = changes
        .into_iter()
        .map(|c| consent_event::Model {
            id: Uuid::now_v7(),
            patron_id,
            purpose: c.purpose,
            granted: c.granted,
            source,
            text_version: c.text_version,
            recorded_at: now,
            created_at: now,
        })
        .collect();
    let models = rows.iter().cloned().map(|m| consent_event::ActiveModel {
        id: Set(m.id),
        patron_id: Set(m.patron_id),
        purpose: Set(m.purpose),
        granted: Set(m.granted),
        source: Set(m.source),
        text_version: Set(m.text_version),
        recorded_at: Set(m.recorded_at),
        created_at: Set(m.created_at),
    });
    consent_event::Entity::insert_many(models).exec_without_returning(db).await?;
    Ok(rows)
}

/// Delete every consent event of a patron (erasure: they are personal data). Returns how many.
pub async fn delete_all(db: &impl ConnectionTrait, patron_id: Uuid) -> AppResult<u64> {
    let deleted =
        consent_event::Entity::delete_many().filter(consent_event::Column::PatronId.eq(patron_id)).exec(db).await?;
    Ok(deleted.rows_affected)
}

#[cfg(test)]
mod tests {
    use sea_orm::DbBackend;

    use super::*;
    use crate::auth::{Principal, Scope};

    #[test]
    fn decisions_are_one_per_purpose_with_bounded_versions() {
        let email = ConsentChange::new(ConsentPurpose::MarketingEmail, true);
        let twice = [email.clone(), ConsentChange::new(ConsentPurpose::MarketingEmail, false)];
        assert!(matches!(
            validate_changes(&twice, None, true),
            Err(AppError::BadInput { field: Some(f), .. }) if f == "input.consents"
        ));
        assert!(matches!(
            validate_changes(&[], None, true),
            Err(AppError::BadInput { field: Some(f), .. }) if f == "input.consents"
        ));
        let long = "v".repeat(MAX_TEXT_VERSION_LEN + 1);
        assert!(matches!(
            validate_changes(std::slice::from_ref(&email), Some(&long), true),
            Err(AppError::BadInput { field: Some(f), .. }) if f == "input.textVersion"
        ));
        let own = ConsentChange { text_version: Some("v2".into()), ..email.clone() };
        let checked =
            validate_changes(&[own, ConsentChange::new(ConsentPurpose::Personalisation, false)], Some("v1"), true)
                .unwrap_or_default();
        let versions: Vec<Option<&str>> = checked.iter().map(|c| c.text_version.as_deref()).collect();
        assert_eq!(versions, vec![Some("v2"), Some("v1")]);
    }

    #[test]
    fn staff_cannot_claim_the_app_source() {
        assert!(check_staff_source(ConsentSource::Staff, "input.source").is_ok());
        assert!(check_staff_source(ConsentSource::Import, "input.source").is_ok());
        assert!(check_staff_source(ConsentSource::App, "input.source").is_err());
    }

    #[test]
    fn only_patrons_record_their_own_and_writers_record_for_others() {
        let me = Uuid::now_v7();
        let patron = Viewer::new(Principal::Patron { patron_id: me });
        assert_eq!(own_patron_id(&patron).ok(), Some(me));
        assert!(matches!(check_write_for_patron(&patron), Err(AppError::Forbidden(_))));
        let staff = Viewer::new(Principal::Staff { account_id: "s".into() });
        assert!(matches!(own_patron_id(&staff), Err(AppError::Forbidden(_))));
        assert!(check_write_for_patron(&staff).is_ok());
        let reader = Viewer::new(Principal::Partner { client_id: "p".into(), scopes: [Scope::PatronsRead].into() });
        assert!(matches!(check_write_for_patron(&reader), Err(AppError::Forbidden(_))));
        assert!(matches!(own_patron_id(&Viewer::anonymous()), Err(AppError::Unauthenticated(_))));
    }

    #[test]
    fn the_latest_decision_is_one_windowed_statement_on_both_databases() {
        let statement = latest_statement(&[Uuid::now_v7()], Some(ConsentPurpose::MarketingSms));
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            let sql = backend.build(&statement).to_string();
            assert!(sql.contains("PARTITION BY \"patron_id\", \"purpose\""), "{sql}");
            assert!(sql.contains("\"rn\" = 1"), "{sql}");
        }
    }
}
