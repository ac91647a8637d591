//! Funders and their grants (fundings). Staff and admins read and write everything; a funder
//! account reads its own funder and that funder's fundings, nothing else.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use entity::{enums::FunderKind, funder, funding, service};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    Set, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    money,
    pagination::{Cursor, Keyset, Page, PageWindow, SortDirection, SortValue},
    search, validation,
};
use crate::{
    auth::{Capability, Viewer},
    error::{AppError, AppResult},
};

/// Largest grant accepted, in minor units: keeps every per-currency total far from overflow.
const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;

#[derive(Debug, Clone, Default)]
pub struct FunderFilter {
    /// Case-insensitive text in the name.
    pub text: Option<String>,
    /// Any of these kinds; empty means all.
    pub kinds: Vec<FunderKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FunderSort {
    #[default]
    Name,
    CreatedAt,
}

#[derive(Debug, Clone)]
pub struct NewFunder {
    pub name: String,
    pub kind: FunderKind,
    pub contact_email: Option<String>,
    pub website: Option<String>,
    pub notes: Option<String>,
}

/// Changes to a funder; `None` keeps a value, an empty string clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct FunderPatch {
    pub name: Option<String>,
    pub kind: Option<FunderKind>,
    pub contact_email: Option<String>,
    pub website: Option<String>,
    pub notes: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewFunding {
    pub funder_id: Uuid,
    pub service_id: Uuid,
    pub name: Option<String>,
    /// Decimal string, e.g. "1250.00".
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

/// Changes to a funding; `None` keeps a value. Changing the currency needs the amount again.
#[derive(Debug, Clone, Default)]
pub struct FundingPatch {
    pub service_id: Option<Uuid>,
    pub name: Option<String>,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
}

/// Which funders' rows a viewer may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunderScope {
    /// Staff and admins: every funder.
    All,
    /// A funder account: only this funder.
    Own(Uuid),
}

impl FunderScope {
    pub fn allows_funder(self, funder_id: Uuid) -> bool {
        match self {
            FunderScope::All => true,
            FunderScope::Own(own) => own == funder_id,
        }
    }

    pub fn allows_funding(self, model: &funding::Model) -> bool {
        self.allows_funder(model.funder_id)
    }
}

/// What this viewer may read of funders and fundings; anonymous → UNAUTHENTICATED, patrons and
/// partners → FORBIDDEN.
pub fn read_scope(viewer: &Viewer) -> AppResult<FunderScope> {
    if viewer.can(Capability::ReadFunders) {
        return Ok(FunderScope::All);
    }
    match viewer.funder_id() {
        Some(own) => Ok(FunderScope::Own(own)),
        None => Err(viewer.denied("read funders")),
    }
}

/// `Ok` when the viewer may read the funder with this id (checked before any row is loaded, so
/// a refusal never reveals whether the row exists).
pub fn check_funder_readable(viewer: &Viewer, funder_id: Uuid) -> AppResult<()> {
    if read_scope(viewer)?.allows_funder(funder_id) { Ok(()) } else { Err(viewer.denied("read another funder")) }
}

/// `Ok` when the viewer may read this funding.
pub fn check_funding_readable(viewer: &Viewer, model: &funding::Model) -> AppResult<()> {
    if read_scope(viewer)?.allows_funding(model) {
        Ok(())
    } else {
        Err(viewer.denied("read another funder's fundings"))
    }
}

/// Staff-only notes on a funder.
pub fn check_notes_readable(viewer: &Viewer) -> AppResult<()> {
    if viewer.can(Capability::ReadFunders) { Ok(()) } else { Err(viewer.denied("read notes on funders")) }
}

fn visibility(scope: FunderScope) -> Condition {
    match scope {
        FunderScope::All => Condition::all(),
        FunderScope::Own(own) => Condition::all().add(funder::Column::Id.eq(own)),
    }
}

fn condition(filter: &FunderFilter) -> Condition {
    let mut cond = Condition::all();
    if !filter.kinds.is_empty() {
        cond = cond.add(funder::Column::Kind.is_in(filter.kinds.iter().copied()));
    }
    if let Some(text) = search::normalise(filter.text.as_deref()) {
        cond = cond.add(search::contains_ci(Expr::col(funder::Column::Name), &text));
    }
    cond
}

fn keyset(sort: FunderSort, direction: SortDirection) -> Keyset {
    let key = match sort {
        FunderSort::Name => Expr::col(funder::Column::Name),
        FunderSort::CreatedAt => Expr::col(funder::Column::CreatedAt),
    };
    Keyset::new(key, Expr::col(funder::Column::Id), direction)
}

fn cursor(sort: FunderSort, model: &funder::Model) -> Cursor {
    let key = match sort {
        FunderSort::Name => SortValue::Text(model.name.clone()),
        FunderSort::CreatedAt => SortValue::Time(model.created_at),
    };
    Cursor::new(key, model.id)
}

/// Funders the viewer may read: all for staff, its own row for a funder account.
pub async fn list(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    filter: &FunderFilter,
    sort: FunderSort,
    direction: SortDirection,
    window: &PageWindow,
) -> AppResult<Page<funder::Model>> {
    let scope = read_scope(viewer)?;
    let select = funder::Entity::find().filter(visibility(scope)).filter(condition(filter));
    keyset(sort, direction).fetch(db, select, window, |m| cursor(sort, m)).await
}

pub async fn count(db: &impl ConnectionTrait, viewer: &Viewer, filter: &FunderFilter) -> AppResult<u64> {
    let scope = read_scope(viewer)?;
    Ok(funder::Entity::find().filter(visibility(scope)).filter(condition(filter)).count(db).await?)
}

pub async fn get(db: &impl ConnectionTrait, viewer: &Viewer, id: Uuid) -> AppResult<funder::Model> {
    check_funder_readable(viewer, id)?;
    funder::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::not_found("funder"))
}

pub async fn get_funding(db: &impl ConnectionTrait, viewer: &Viewer, id: Uuid) -> AppResult<funding::Model> {
    read_scope(viewer)?;
    let model = funding::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::not_found("funding"))?;
    check_funding_readable(viewer, &model)?;
    Ok(model)
}

/// A web address: `http://` or `https://`, a plausible host, no spaces, at most 300 characters.
fn website(raw: &str, field: &str) -> AppResult<String> {
    let value = raw.trim();
    let bad = || AppError::bad_field(field, "website must be an http(s) URL of at most 300 characters");
    if value.chars().count() > 300 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let lower = value.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")).ok_or_else(bad)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => h,
        Some((_, "")) => return Err(bad()),
        _ => host,
    };
    let valid_host = !host.is_empty()
        && !host.starts_with(['.', '-'])
        && !host.ends_with(['.', '-'])
        && !host.contains("..")
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if valid_host { Ok(value.to_owned()) } else { Err(bad()) }
}

fn optional_email(raw: Option<&str>, field: &str) -> AppResult<Option<String>> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => validation::email(v, field).map(Some),
    }
}

fn optional_website(raw: Option<&str>, field: &str) -> AppResult<Option<String>> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => website(v, field).map(Some),
    }
}

pub async fn create(db: &impl ConnectionTrait, viewer: &Viewer, input: NewFunder) -> AppResult<funder::Model> {
    viewer.require(Capability::WriteFunders)?;
    let name = validation::required_text(&input.name, "input.name", 200)?;
    let contact_email = optional_email(input.contact_email.as_deref(), "input.contactEmail")?;
    let website = optional_website(input.website.as_deref(), "input.website")?;
    let notes = validation::optional_text(input.notes.as_deref(), "input.notes", 5_000)?;
    let now = Utc::now();
    let model = funder::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name),
        kind: Set(input.kind),
        contact_email: Set(contact_email),
        website: Set(website),
        notes: Set(notes),
        created_at: Set(now),
        updated_at: Set(now),
    };
    Ok(model.insert(db).await?)
}

pub async fn update(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    id: Uuid,
    patch: FunderPatch,
) -> AppResult<funder::Model> {
    viewer.require(Capability::WriteFunders)?;
    let existing = funder::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::not_found("funder"))?;
    let mut model: funder::ActiveModel = existing.into();
    if let Some(name) = &patch.name {
        model.name = Set(validation::required_text(name, "input.name", 200)?);
    }
    if let Some(kind) = patch.kind {
        model.kind = Set(kind);
    }
    if let Some(email) = &patch.contact_email {
        model.contact_email = Set(optional_email(Some(email), "input.contactEmail")?);
    }
    if let Some(site) = &patch.website {
        model.website = Set(optional_website(Some(site), "input.website")?);
    }
    if let Some(notes) = &patch.notes {
        model.notes = Set(validation::optional_text(Some(notes), "input.notes", 5_000)?);
    }
    model.updated_at = Set(Utc::now());
    Ok(model.update(db).await?)
}

fn amount(raw: &str, currency: &str, field: &str) -> AppResult<i64> {
    let minor = money::parse_amount(raw, currency, field)?;
    if minor > MAX_AMOUNT_MINOR {
        return Err(AppError::bad_field(field, "amount is too large"));
    }
    Ok(minor)
}

fn check_period(starts_on: NaiveDate, ends_on: NaiveDate) -> AppResult<()> {
    if ends_on < starts_on {
        Err(AppError::bad_field("input.endsOn", "`input.endsOn` must not be before `input.startsOn`"))
    } else {
        Ok(())
    }
}

async fn require_funder_exists(db: &impl ConnectionTrait, id: Uuid) -> AppResult<()> {
    match funder::Entity::find_by_id(id).one(db).await? {
        Some(_) => Ok(()),
        None => Err(AppError::bad_field("input.funderId", "no funder with this id")),
    }
}

async fn require_service_exists(db: &impl ConnectionTrait, id: Uuid) -> AppResult<()> {
    match service::Entity::find_by_id(id).one(db).await? {
        Some(_) => Ok(()),
        None => Err(AppError::bad_field("input.serviceId", "no service with this id")),
    }
}

pub async fn create_funding(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    input: NewFunding,
) -> AppResult<funding::Model> {
    viewer.require(Capability::WriteFunders)?;
    let name = validation::optional_text(input.name.as_deref(), "input.name", 200)?;
    let currency = money::parse_currency(&input.currency, "input.currency")?;
    let amount_minor = amount(&input.amount, &currency, "input.amount")?;
    check_period(input.starts_on, input.ends_on)?;
    require_funder_exists(db, input.funder_id).await?;
    require_service_exists(db, input.service_id).await?;
    let now = Utc::now();
    let model = funding::ActiveModel {
        id: Set(Uuid::now_v7()),
        funder_id: Set(input.funder_id),
        service_id: Set(input.service_id),
        name: Set(name),
        amount_minor: Set(amount_minor),
        currency: Set(currency),
        starts_on: Set(input.starts_on),
        ends_on: Set(input.ends_on),
        created_at: Set(now),
        updated_at: Set(now),
    };
    Ok(model.insert(db).await?)
}

pub async fn update_funding(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    id: Uuid,
    patch: FundingPatch,
) -> AppResult<funding::Model> {
    viewer.require(Capability::WriteFunders)?;
    let existing = funding::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::not_found("funding"))?;
    let currency = match &patch.currency {
        Some(raw) => money::parse_currency(raw, "input.currency")?,
        None => existing.currency.clone(),
    };
    let amount_minor = match &patch.amount {
        Some(raw) => Some(amount(raw, &currency, "input.amount")?),
        None if currency != existing.currency => {
            return Err(AppError::bad_field("input.amount", "give the amount again when changing the currency"));
        }
        None => None,
    };
    let starts_on = patch.starts_on.unwrap_or(existing.starts_on);
    let ends_on = patch.ends_on.unwrap_or(existing.ends_on);
    check_period(starts_on, ends_on)?;
    if let Some(service_id) = patch.service_id {
        require_service_exists(db, service_id).await?;
    }
    let name = match &patch.name {
        Some(name) => Some(validation::optional_text(Some(name), "input.name", 200)?),
        None => None,
    };
    let mut model: funding::ActiveModel = existing.into();
    if let Some(service_id) = patch.service_id {
        model.service_id = Set(service_id);
    }
    if let Some(name) = name {
        model.name = Set(name);
    }
    if let Some(amount_minor) = amount_minor {
        model.amount_minor = Set(amount_minor);
    }
    model.currency = Set(currency);
    model.starts_on = Set(starts_on);
    model.ends_on = Set(ends_on);
    model.updated_at = Set(Utc::now());
    Ok(model.update(db).await?)
}

/// Sum of amounts per currency (minor units), ordered by currency code.
pub fn totals_by_currency<'a>(fundings: impl IntoIterator<Item = &'a funding::Model>) -> AppResult<Vec<(String, i64)>> {
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for f in fundings {
        let total = totals.entry(f.currency.clone()).or_default();
        *total = total
            .checked_add(f.amount_minor)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("funding total overflows for {}", f.currency)))?;
    }
    Ok(totals.into_iter().collect())
}

/// Funders by id, for loaders (no access check: callers check each row).
pub async fn by_ids(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<funder::Model>> {
    Ok(funder::Entity::find().filter(funder::Column::Id.is_in(ids.iter().copied())).all(db).await?)
}

/// Fundings by id, for loaders (no access check: callers check each row).
pub async fn fundings_by_ids(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<funding::Model>> {
    Ok(funding::Entity::find().filter(funding::Column::Id.is_in(ids.iter().copied())).all(db).await?)
}

/// Fundings of these services, oldest grant period first (no access check: callers filter).
pub async fn for_services(db: &impl ConnectionTrait, service_ids: &[Uuid]) -> AppResult<Vec<funding::Model>> {
    Ok(funding::Entity::find()
        .filter(funding::Column::ServiceId.is_in(service_ids.iter().copied()))
        .order_by_asc(funding::Column::StartsOn)
        .order_by_asc(funding::Column::Id)
        .all(db)
        .await?)
}

/// Fundings of these funders, oldest grant period first (no access check: callers filter).
pub async fn for_funders(db: &impl ConnectionTrait, funder_ids: &[Uuid]) -> AppResult<Vec<funding::Model>> {
    Ok(funding::Entity::find()
        .filter(funding::Column::FunderId.is_in(funder_ids.iter().copied()))
        .order_by_asc(funding::Column::StartsOn)
        .order_by_asc(funding::Column::Id)
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Principal;

    #[test]
    fn websites_must_be_http_urls() {
        assert!(website("https://example.org/grants?x=1", "w").is_ok());
        assert!(website("http://localhost:8080", "w").is_ok());
        assert!(website("ftp://example.org", "w").is_err());
        assert!(website("https://", "w").is_err());
        assert!(website("https://exa mple.org", "w").is_err());
        assert!(website("https://example..org", "w").is_err());
        assert!(website(&format!("https://example.org/{}", "a".repeat(300)), "w").is_err());
    }

    #[test]
    fn scopes_follow_the_roles_matrix() {
        let own = Uuid::now_v7();
        let funder = Viewer::new(Principal::Funder { account_id: "f".into(), funder_id: own });
        assert_eq!(read_scope(&funder).ok(), Some(FunderScope::Own(own)));
        assert!(check_funder_readable(&funder, own).is_ok());
        assert!(matches!(check_funder_readable(&funder, Uuid::now_v7()), Err(AppError::Forbidden(_))));
        assert!(matches!(check_notes_readable(&funder), Err(AppError::Forbidden(_))));
        let staff = Viewer::new(Principal::Staff { account_id: "s".into() });
        assert_eq!(read_scope(&staff).ok(), Some(FunderScope::All));
        assert!(matches!(read_scope(&Viewer::anonymous()), Err(AppError::Unauthenticated(_))));
        let patron = Viewer::new(Principal::Patron { patron_id: Uuid::now_v7() });
        assert!(matches!(read_scope(&patron), Err(AppError::Forbidden(_))));
    }

    #[test]
    fn totals_are_per_currency() {
        let now = Utc::now();
        let day = now.date_naive();
        let grant = |amount_minor: i64, currency: &str| funding::Model {
            id: Uuid::now_v7(),
            funder_id: Uuid::nil(),
            service_id: Uuid::nil(),
            name: None,
            amount_minor,
            currency: currency.into(),
            starts_on: day,
            ends_on: day,
            created_at: now,
            updated_at: now,
        };
        let rows = [grant(100, "EUR"), grant(250, "USD"), grant(50, "EUR")];
        assert_eq!(totals_by_currency(&rows).ok(), Some(vec![("EUR".into(), 150), ("USD".into(), 250)]));
    }
}
