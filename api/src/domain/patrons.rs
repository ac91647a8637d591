//! Patrons: the people the library serves. Staff, admins and partners with a patrons scope read
//! (and with the write capability change) any record; a patron reads only their own, without
//! the staff-facing tags; funders and anonymous callers are refused.

use std::collections::HashMap;

use chrono::Utc;
use entity::{
    enums::{ConsentPurpose, ConsentSource, PatronStatus, PatronType},
    patron, patron_tag,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    Set, TransactionSession, TransactionTrait,
    sea_query::{Expr, Func, Query, SimpleExpr},
};
use uuid::Uuid;

use super::{
    consent::{self, ConsentChange},
    pagination::{Cursor, Keyset, Page, PageWindow, SortDirection, SortValue},
    search, validation,
};
use crate::{
    auth::{Capability, Viewer},
    error::{AppError, AppResult},
};

/// Most tags one patron may carry, and the longest tag.
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_LEN: usize = 50;
const MAX_NAME_LEN: usize = 200;
const MAX_BRANCH_LEN: usize = 100;

#[derive(Debug, Clone, Default)]
pub struct PatronFilter {
    /// Case-insensitive text in name, card number or email.
    pub text: Option<String>,
    /// Any of these patron types.
    pub patron_types: Vec<PatronType>,
    /// Carrying any of these tags.
    pub tags: Vec<String>,
    /// Any of these statuses.
    pub statuses: Vec<PatronStatus>,
    /// Exactly this home branch.
    pub home_branch: Option<String>,
    /// In any of these lifecycle stages (a `MIN`/`MAX(occurred_at)` subquery).
    pub lifecycle: Option<super::engagement::StageFilter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PatronSort {
    #[default]
    Name,
    CreatedAt,
    CardNumber,
}

/// One consent decision recorded with a create or update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentInput {
    pub purpose: ConsentPurpose,
    pub granted: bool,
    /// Version of the consent wording shown, if known.
    pub text_version: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewPatron {
    pub card_number: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub patron_type: PatronType,
    pub home_branch: Option<String>,
    pub status: Option<PatronStatus>,
    pub tags: Vec<String>,
    pub consents: Vec<ConsentInput>,
}

/// Changes to a patron. `None` keeps a field; for the optional contact fields `Some(None)` (or
/// an empty string) clears it.
#[derive(Debug, Clone, Default)]
pub struct PatronPatch {
    pub card_number: Option<String>,
    pub name: Option<String>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub patron_type: Option<PatronType>,
    pub home_branch: Option<Option<String>>,
    pub status: Option<PatronStatus>,
    /// Replaces all tags when given.
    pub tags: Option<Vec<String>>,
    /// Consent decisions to record now (appended to the history).
    pub consents: Vec<ConsentInput>,
}

// ---------------------------------------------------------------------------------------------
// Access rules

/// Whether this viewer may read the record of patron `id`: any record with the read capability,
/// only their own as a patron.
pub fn check_read(viewer: &Viewer, id: Uuid) -> AppResult<()> {
    if viewer.can(Capability::ReadPatrons) || viewer.patron_id() == Some(id) {
        return Ok(());
    }
    if viewer.patron_id().is_some() {
        return Err(viewer.denied("read another patron's record"));
    }
    viewer.require(Capability::ReadPatrons)
}

/// Whether this viewer may read any patron record at all (a patron: their own).
pub fn check_read_any(viewer: &Viewer) -> AppResult<()> {
    if viewer.patron_id().is_some() { Ok(()) } else { viewer.require(Capability::ReadPatrons) }
}

/// Whether this viewer may change patron records.
pub fn check_write(viewer: &Viewer) -> AppResult<()> {
    viewer.require(Capability::WritePatrons)
}

/// Tags are staff-facing labels: patrons do not see them, not even their own.
pub fn check_read_tags(viewer: &Viewer) -> AppResult<()> {
    if viewer.can(Capability::ReadPatrons) { Ok(()) } else { Err(viewer.denied("read patron tags")) }
}

// ---------------------------------------------------------------------------------------------
// Queries

fn condition(filter: &PatronFilter) -> Condition {
    let mut cond = Condition::all();
    if let Some(text) = search::normalise(filter.text.as_deref()) {
        cond = cond.add(
            Condition::any()
                .add(search::contains_ci(Expr::col(patron::Column::Name), &text))
                .add(search::contains_ci(Expr::col(patron::Column::CardNumber), &text))
                .add(search::contains_ci(Expr::col(patron::Column::Email), &text)),
        );
    }
    if !filter.patron_types.is_empty() {
        cond = cond.add(patron::Column::PatronType.is_in(filter.patron_types.iter().copied()));
    }
    if !filter.statuses.is_empty() {
        cond = cond.add(patron::Column::Status.is_in(filter.statuses.iter().copied()));
    }
    let tags: Vec<String> = filter.tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()).map(str::to_owned).collect();
    if !tags.is_empty() {
        let tagged = Query::select()
            .column(patron_tag::Column::PatronId)
            .from(patron_tag::Entity)
            .and_where(patron_tag::Column::Tag.is_in(tags))
            .to_owned();
        cond = cond.add(patron::Column::Id.in_subquery(tagged));
    }
    if let Some(branch) = filter.home_branch.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        cond = cond.add(patron::Column::HomeBranch.eq(branch));
    }
    if let Some(lifecycle) = &filter.lifecycle {
        cond = cond.add(lifecycle.condition());
    }
    cond
}

/// `COALESCE(column, '')`: erased patrons have no name or card number, and a NULL key would
/// fall out of every keyset comparison.
fn text_key(column: patron::Column) -> SimpleExpr {
    Func::coalesce([Expr::col(column), Expr::val("")]).into()
}

fn keyset(sort: PatronSort, direction: SortDirection) -> Keyset {
    let key = match sort {
        PatronSort::Name => text_key(patron::Column::Name),
        PatronSort::CardNumber => text_key(patron::Column::CardNumber),
        PatronSort::CreatedAt => Expr::col(patron::Column::CreatedAt),
    };
    Keyset::new(key, Expr::col(patron::Column::Id), direction)
}

fn cursor(sort: PatronSort, model: &patron::Model) -> Cursor {
    let key = match sort {
        PatronSort::Name => SortValue::Text(model.name.clone().unwrap_or_default()),
        PatronSort::CardNumber => SortValue::Text(model.card_number.clone().unwrap_or_default()),
        PatronSort::CreatedAt => SortValue::Time(model.created_at),
    };
    Cursor::new(key, model.id)
}

/// Most tags one filter may name.
const MAX_FILTER_TAGS: usize = 100;

fn check_filter(filter: &PatronFilter) -> AppResult<()> {
    if filter.tags.len() > MAX_FILTER_TAGS {
        return Err(AppError::bad_field("filter.tags", format!("filter by at most {MAX_FILTER_TAGS} tags")));
    }
    Ok(())
}

/// A cursor made for another ordering would compare text with times: refuse it up front.
fn check_cursor(sort: PatronSort, window: &PageWindow) -> AppResult<()> {
    let Some(cursor) = &window.cursor else {
        return Ok(());
    };
    let matches = matches!(
        (sort, &cursor.key),
        (PatronSort::Name | PatronSort::CardNumber, SortValue::Text(_)) | (PatronSort::CreatedAt, SortValue::Time(_))
    );
    if matches {
        Ok(())
    } else {
        let field = if window.backward { "before" } else { "after" };
        Err(AppError::bad_field(field, "cursor does not belong to this ordering"))
    }
}

pub async fn list(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    filter: &PatronFilter,
    sort: PatronSort,
    direction: SortDirection,
    window: &PageWindow,
) -> AppResult<Page<patron::Model>> {
    viewer.require(Capability::ReadPatrons)?;
    check_filter(filter)?;
    check_cursor(sort, window)?;
    let select = patron::Entity::find().filter(condition(filter));
    keyset(sort, direction).fetch(db, select, window, |m| cursor(sort, m)).await
}

pub async fn count(db: &impl ConnectionTrait, viewer: &Viewer, filter: &PatronFilter) -> AppResult<u64> {
    viewer.require(Capability::ReadPatrons)?;
    check_filter(filter)?;
    Ok(patron::Entity::find().filter(condition(filter)).count(db).await?)
}

/// One patron, if this viewer may read it. The access check comes first, so a patron asking
/// for another id learns nothing about whether it exists.
pub async fn get(db: &impl ConnectionTrait, viewer: &Viewer, id: Uuid) -> AppResult<patron::Model> {
    check_read(viewer, id)?;
    patron::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::not_found("patron"))
}

/// Patrons by id, for loaders (no access check: callers check each row).
pub async fn by_ids(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<patron::Model>> {
    Ok(patron::Entity::find().filter(patron::Column::Id.is_in(ids.iter().copied())).all(db).await?)
}

/// Tags of each patron, sorted; patrons without tags are absent from the map.
pub async fn tags_for(db: &impl ConnectionTrait, patron_ids: &[Uuid]) -> AppResult<HashMap<Uuid, Vec<String>>> {
    let rows = patron_tag::Entity::find()
        .filter(patron_tag::Column::PatronId.is_in(patron_ids.iter().copied()))
        .order_by_asc(patron_tag::Column::PatronId)
        .order_by_asc(patron_tag::Column::Tag)
        .all(db)
        .await?;
    let mut out: HashMap<Uuid, Vec<String>> = HashMap::new();
    for row in rows {
        out.entry(row.patron_id).or_default().push(row.tag);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Writes

/// Tags: trimmed, non-empty, at most [`MAX_TAG_LEN`] characters, at most [`MAX_TAGS`] after
/// removing duplicates, in the order given.
pub fn valid_tags(tags: &[String], field: &str) -> AppResult<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim();
        if tag.is_empty() {
            return Err(AppError::bad_field(field, "tags must not be empty"));
        }
        if tag.chars().count() > MAX_TAG_LEN {
            return Err(AppError::bad_field(field, format!("tags may be at most {MAX_TAG_LEN} characters")));
        }
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_owned());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(AppError::bad_field(field, format!("a patron may have at most {MAX_TAGS} tags")));
    }
    Ok(out)
}

fn valid_email(value: Option<&str>, field: &str) -> AppResult<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => validation::email(v, field).map(Some),
    }
}

fn valid_phone(value: Option<&str>, field: &str) -> AppResult<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => validation::phone(v, field).map(Some),
    }
}

/// Erasure is its own operation (it removes personal data and anonymises history); a plain
/// status change may not claim it happened.
fn valid_status(status: PatronStatus, field: &str) -> AppResult<PatronStatus> {
    if status == PatronStatus::Erased {
        Err(AppError::bad_field(field, "a patron is erased through erasure, not by setting the status"))
    } else {
        Ok(status)
    }
}

/// One decision per purpose, with a bounded wording version (the rules of `domain::consent`).
fn valid_consents(consents: &[ConsentInput]) -> AppResult<Vec<ConsentChange>> {
    let changes: Vec<ConsentChange> = consents
        .iter()
        .map(|c| ConsentChange { purpose: c.purpose, granted: c.granted, text_version: c.text_version.clone() })
        .collect();
    consent::validate_changes(&changes, None, false)
}

fn card_number_conflict(err: AppError) -> AppError {
    match err {
        AppError::Conflict(_) => AppError::conflict("card number already in use"),
        other => other,
    }
}

async fn insert_tags(db: &impl ConnectionTrait, patron_id: Uuid, tags: &[String]) -> AppResult<()> {
    let rows = tags.iter().map(|tag| patron_tag::ActiveModel { patron_id: Set(patron_id), tag: Set(tag.clone()) });
    patron_tag::Entity::insert_many(rows).exec_without_returning(db).await?;
    Ok(())
}

/// Create a patron with its tags and initial consents, all or nothing.
pub async fn create<C>(db: &C, viewer: &Viewer, input: NewPatron) -> AppResult<patron::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    check_write(viewer)?;
    let card_number = validation::card_number(&input.card_number, "input.cardNumber")?;
    let name = validation::required_text(&input.name, "input.name", MAX_NAME_LEN)?;
    let email = valid_email(input.email.as_deref(), "input.email")?;
    let phone = valid_phone(input.phone.as_deref(), "input.phone")?;
    let home_branch = validation::optional_text(input.home_branch.as_deref(), "input.homeBranch", MAX_BRANCH_LEN)?;
    let status = valid_status(input.status.unwrap_or(PatronStatus::Active), "input.status")?;
    let tags = valid_tags(&input.tags, "input.tags")?;
    let consents = valid_consents(&input.consents)?;

    let now = Utc::now();
    let id = Uuid::now_v7();
    let model = patron::ActiveModel {
        id: Set(id),
        card_number: Set(Some(card_number)),
        name: Set(Some(name)),
        email: Set(email),
        phone: Set(phone),
        patron_type: Set(input.patron_type),
        home_branch: Set(home_branch),
        status: Set(status),
        pin_hash: Set(None),
        erased_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let txn = db.begin().await?;
    let created = model.insert(&txn).await.map_err(|e| card_number_conflict(e.into()))?;
    insert_tags(&txn, id, &tags).await?;
    consent::record(&txn, id, &consents, ConsentSource::Staff, None).await?;
    txn.commit().await?;
    Ok(created)
}

/// Change a patron; omitted fields keep their value. Tags are replaced when given, consents
/// given are recorded as new events; all in one transaction.
pub async fn update<C>(db: &C, viewer: &Viewer, id: Uuid, patch: PatronPatch) -> AppResult<patron::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    check_write(viewer)?;
    // Validate everything before touching the database.
    let card_number =
        patch.card_number.as_deref().map(|c| validation::card_number(c, "input.cardNumber")).transpose()?;
    let name = patch.name.as_deref().map(|n| validation::required_text(n, "input.name", MAX_NAME_LEN)).transpose()?;
    let email = patch.email.as_ref().map(|e| valid_email(e.as_deref(), "input.email")).transpose()?;
    let phone = patch.phone.as_ref().map(|p| valid_phone(p.as_deref(), "input.phone")).transpose()?;
    let home_branch = patch
        .home_branch
        .as_ref()
        .map(|b| validation::optional_text(b.as_deref(), "input.homeBranch", MAX_BRANCH_LEN))
        .transpose()?;
    let status = patch.status.map(|s| valid_status(s, "input.status")).transpose()?;
    let tags = patch.tags.as_deref().map(|t| valid_tags(t, "input.tags")).transpose()?;
    let consents = valid_consents(&patch.consents)?;

    let txn = db.begin().await?;
    let existing = patron::Entity::find_by_id(id).one(&txn).await?.ok_or_else(|| AppError::not_found("patron"))?;
    if existing.status == PatronStatus::Erased {
        return Err(AppError::conflict("this patron has been erased and can no longer be changed"));
    }
    let now = Utc::now();
    let mut model: patron::ActiveModel = existing.into();
    if let Some(card_number) = card_number {
        model.card_number = Set(Some(card_number));
    }
    if let Some(name) = name {
        model.name = Set(Some(name));
    }
    if let Some(email) = email {
        model.email = Set(email);
    }
    if let Some(phone) = phone {
        model.phone = Set(phone);
    }
    if let Some(patron_type) = patch.patron_type {
        model.patron_type = Set(patron_type);
    }
    if let Some(home_branch) = home_branch {
        model.home_branch = Set(home_branch);
    }
    if let Some(status) = status {
        model.status = Set(status);
    }
    model.updated_at = Set(now);
    let updated = model.update(&txn).await.map_err(|e| card_number_conflict(e.into()))?;
    if let Some(tags) = tags {
        patron_tag::Entity::delete_many().filter(patron_tag::Column::PatronId.eq(id)).exec(&txn).await?;
        insert_tags(&txn, id, &tags).await?;
    }
    consent::record(&txn, id, &consents, ConsentSource::Staff, None).await?;
    txn.commit().await?;
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use crate::auth::{Principal, Scope};

    use super::*;

    fn patron_viewer(id: Uuid) -> Viewer {
        Viewer::new(Principal::Patron { patron_id: id })
    }

    #[test]
    fn tags_are_trimmed_deduplicated_and_bounded() {
        let tags = vec![" a ".to_owned(), "b".to_owned(), "a".to_owned()];
        assert_eq!(valid_tags(&tags, "t").ok(), Some(vec!["a".to_owned(), "b".to_owned()]));
        assert!(valid_tags(&["  ".to_owned()], "t").is_err());
        assert!(valid_tags(&["x".repeat(51)], "t").is_err());
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(valid_tags(&many, "t").is_err());
        let repeated: Vec<String> = (0..30).map(|i| format!("t{}", i % 20)).collect();
        assert_eq!(valid_tags(&repeated, "t").map(|t| t.len()).ok(), Some(20));
    }

    #[test]
    fn patrons_read_only_themselves() {
        let me = Uuid::now_v7();
        let viewer = patron_viewer(me);
        assert!(check_read(&viewer, me).is_ok());
        assert!(matches!(check_read(&viewer, Uuid::now_v7()), Err(AppError::Forbidden(_))));
        assert!(matches!(check_read_tags(&viewer), Err(AppError::Forbidden(_))));
        assert!(matches!(check_read(&Viewer::anonymous(), me), Err(AppError::Unauthenticated(_))));
        let partner = Viewer::new(Principal::Partner {
            client_id: "c".into(),
            scopes: [Scope::PatronsRead].into_iter().collect(),
        });
        assert!(check_read(&partner, me).is_ok());
        assert!(check_read_tags(&partner).is_ok());
    }
}
