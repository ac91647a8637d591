//! Segments: named rules over patrons whose members are computed in SQL, never typed in.
//!
//! A rule is a set of parts combined with AND; each list part matches ANY of its values, and
//! an empty (absent) part matches everyone:
//! - `patronTypes`, `tags`, `homeBranches`: the patron's type, any tag, home branch;
//! - `lifecycleStages`: the stage now (`domain::engagement::stages_condition`);
//! - `servicesUsed`: used at least one of the services, ever; `servicesNeverUsed`: used NONE of
//!   them (interactions still linked to the patron: anonymised history no longer counts);
//! - `lastActivityBefore` / `lastActivityAfter`: the latest interaction is before / at or after
//!   the time; patrons without any interaction match neither;
//! - `consentTo` (purposes) and `consentToChannels` (campaign channels, each meaning its
//!   marketing purpose): the latest decision on at least one of them is "given".
//!
//! Erased patrons are never members. The rule is stored as JSON in `segment.rule`.
//!
//! Staff, admins and partners with `campaigns:read` read segments (`campaigns:write` to change
//! them); listing the members also needs the patron-read capability, since they are patron
//! records.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{
    consent_event,
    enums::{CampaignChannel, ConsentPurpose, PatronStatus, PatronType},
    interaction, patron, patron_tag, segment, service,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set,
    sea_query::{
        Alias, Expr, ExprTrait, Func, OverStatement, Query, SelectStatement, SimpleExpr, UnionType, WindowStatement,
    },
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    engagement::{LifecycleStage, stages_condition},
    pagination::{Cursor, Keyset, Page, PageWindow, SortDirection, SortValue},
    patrons::MAX_TAG_LEN,
    validation,
};
use crate::{
    auth::{Capability, Viewer},
    config::LifecycleSettings,
    error::{AppError, AppResult},
};

const MAX_NAME_LEN: usize = 200;
const MAX_BRANCH_LEN: usize = 100;
/// Most values one list part of a rule may hold.
pub const MAX_RULE_VALUES: usize = 100;

/// A segment rule (see the module documentation). Lists are deduplicated, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SegmentRule {
    pub patron_types: Vec<PatronType>,
    pub tags: Vec<String>,
    pub home_branches: Vec<String>,
    #[serde(with = "stage_names")]
    pub lifecycle_stages: Vec<LifecycleStage>,
    pub services_used: Vec<Uuid>,
    pub services_never_used: Vec<Uuid>,
    pub last_activity_before: Option<DateTime<Utc>>,
    pub last_activity_after: Option<DateTime<Utc>>,
    pub consent_to: Vec<ConsentPurpose>,
    pub consent_to_channels: Vec<CampaignChannel>,
}

/// Lifecycle stages in the rule's JSON as their API names (`AT_RISK`, ...).
mod stage_names {
    use serde::{Deserialize, Deserializer, Serializer, de::Error, ser::SerializeSeq};

    use super::LifecycleStage;

    fn name(stage: LifecycleStage) -> &'static str {
        match stage {
            LifecycleStage::New => "NEW",
            LifecycleStage::Active => "ACTIVE",
            LifecycleStage::AtRisk => "AT_RISK",
            LifecycleStage::Lapsed => "LAPSED",
            LifecycleStage::NeverEngaged => "NEVER_ENGAGED",
        }
    }

    pub fn serialize<S: Serializer>(stages: &[LifecycleStage], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(stages.len()))?;
        for stage in stages {
            seq.serialize_element(name(*stage))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<LifecycleStage>, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        names
            .iter()
            .map(|n| {
                LifecycleStage::ALL
                    .into_iter()
                    .find(|s| name(*s) == n)
                    .ok_or_else(|| D::Error::custom(format!("unknown lifecycle stage {n:?}")))
            })
            .collect()
    }
}

impl SegmentRule {
    /// The stored JSON form.
    pub fn to_json(&self) -> AppResult<String> {
        serde_json::to_string(self).map_err(|e| AppError::internal(anyhow::anyhow!("segment rule to JSON: {e}")))
    }

    /// The rule of a stored segment.
    pub fn of(model: &segment::Model) -> AppResult<Self> {
        serde_json::from_str(&model.rule)
            .map_err(|e| AppError::internal(anyhow::anyhow!("segment {} has an unreadable rule: {e}", model.id)))
    }

    /// Marketing purposes named by `consentTo` and `consentToChannels` together.
    fn consent_purposes(&self) -> Vec<ConsentPurpose> {
        let mut out: Vec<ConsentPurpose> = Vec::new();
        for purpose in
            self.consent_to.iter().copied().chain(self.consent_to_channels.iter().map(|c| c.consent_purpose()))
        {
            if !out.contains(&purpose) {
                out.push(purpose);
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct NewSegment {
    pub name: String,
    pub rule: SegmentRule,
}

/// Changes to a segment; `None` keeps a value. A rule given replaces the whole rule.
#[derive(Debug, Clone, Default)]
pub struct SegmentPatch {
    pub name: Option<String>,
    pub rule: Option<SegmentRule>,
}

// ---------------------------------------------------------------------------------------------
// Access rules

/// Staff, admins, partners with `campaigns:read` (or `campaigns:write`).
pub fn check_read(viewer: &Viewer) -> AppResult<()> {
    viewer.require(Capability::ReadCampaigns)
}

/// Staff, admins, partners with `campaigns:write`.
pub fn check_write(viewer: &Viewer) -> AppResult<()> {
    viewer.require(Capability::WriteCampaigns)
}

/// Members are patron records: reading them also needs the patron-read capability.
pub fn check_read_members(viewer: &Viewer) -> AppResult<()> {
    check_read(viewer)?;
    viewer.require(Capability::ReadPatrons)
}

// ---------------------------------------------------------------------------------------------
// Validation

fn dedup<T: PartialEq + Clone>(values: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(values.len());
    for v in values {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

fn bounded<T>(values: &[T], field: &str) -> AppResult<()> {
    if values.len() > MAX_RULE_VALUES {
        return Err(AppError::bad_field(field, format!("give at most {MAX_RULE_VALUES} values")));
    }
    Ok(())
}

fn texts(values: &[String], field: &str, max_len: usize) -> AppResult<Vec<String>> {
    bounded(values, field)?;
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let value = validation::required_text(value, field, max_len)?;
        if !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

/// Check and normalise a rule; `field` is where it sits in the input (e.g. `input.rule`).
/// Services must exist.
pub async fn validate_rule(db: &impl ConnectionTrait, rule: &SegmentRule, field: &str) -> AppResult<SegmentRule> {
    bounded(&rule.patron_types, &format!("{field}.patronTypes"))?;
    bounded(&rule.lifecycle_stages, &format!("{field}.lifecycleStages"))?;
    bounded(&rule.services_used, &format!("{field}.servicesUsed"))?;
    bounded(&rule.services_never_used, &format!("{field}.servicesNeverUsed"))?;
    bounded(&rule.consent_to, &format!("{field}.consentTo"))?;
    bounded(&rule.consent_to_channels, &format!("{field}.consentToChannels"))?;
    let out = SegmentRule {
        patron_types: dedup(&rule.patron_types),
        tags: texts(&rule.tags, &format!("{field}.tags"), MAX_TAG_LEN)?,
        home_branches: texts(&rule.home_branches, &format!("{field}.homeBranches"), MAX_BRANCH_LEN)?,
        lifecycle_stages: dedup(&rule.lifecycle_stages),
        services_used: dedup(&rule.services_used),
        services_never_used: dedup(&rule.services_never_used),
        last_activity_before: rule.last_activity_before,
        last_activity_after: rule.last_activity_after,
        consent_to: dedup(&rule.consent_to),
        consent_to_channels: dedup(&rule.consent_to_channels),
    };
    if let (Some(before), Some(after)) = (out.last_activity_before, out.last_activity_after)
        && before <= after
    {
        return Err(AppError::bad_field(
            format!("{field}.lastActivityBefore"),
            "must be later than `lastActivityAfter`, or no patron can match",
        ));
    }
    let used: HashSet<Uuid> = out.services_used.iter().copied().collect();
    if out.services_never_used.iter().any(|s| used.contains(s)) {
        return Err(AppError::bad_field(
            format!("{field}.servicesNeverUsed"),
            "a service cannot be both used and never used",
        ));
    }
    for (ids, part) in [(&out.services_used, "servicesUsed"), (&out.services_never_used, "servicesNeverUsed")] {
        if ids.is_empty() {
            continue;
        }
        let found = service::Entity::find().filter(service::Column::Id.is_in(ids.iter().copied())).count(db).await?;
        if found != ids.len() as u64 {
            return Err(AppError::bad_field(format!("{field}.{part}"), "unknown service"));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// Patrons who used any of `services` (interactions still linked to them).
fn users_of(services: &[Uuid]) -> SelectStatement {
    Query::select()
        .column(interaction::Column::PatronId)
        .from(interaction::Entity)
        .and_where(interaction::Column::PatronId.is_not_null())
        .and_where(interaction::Column::ServiceId.is_in(services.iter().copied()))
        .to_owned()
}

/// Patrons with an interaction at or after `at` (optionally only those at or after it).
fn active_since(at: Option<DateTime<Utc>>) -> SelectStatement {
    let mut select = Query::select()
        .column(interaction::Column::PatronId)
        .from(interaction::Entity)
        .and_where(interaction::Column::PatronId.is_not_null())
        .to_owned();
    if let Some(at) = at {
        select.and_where(interaction::Column::OccurredAt.gte(at));
    }
    select
}

/// Patrons whose latest decision on any of `purposes` is "given": the latest event per
/// (patron, purpose), as `domain::consent` reads it.
fn consenting_to(purposes: &[ConsentPurpose]) -> SelectStatement {
    let mut inner = consent_event::Entity::find()
        .select_only()
        .column(consent_event::Column::PatronId)
        .column(consent_event::Column::Granted)
        .filter(consent_event::Column::Purpose.is_in(purposes.iter().copied()))
        .into_query();
    let mut window = WindowStatement::new();
    window.partition_by_columns([consent_event::Column::PatronId, consent_event::Column::Purpose]);
    window.order_by(consent_event::Column::RecordedAt, Order::Desc).order_by(consent_event::Column::Id, Order::Desc);
    inner.expr_window_as(Func::cust("ROW_NUMBER"), window, Alias::new("rn"));
    Query::select()
        .column(Alias::new("patron_id"))
        .from_subquery(inner, Alias::new("latest"))
        .and_where(Expr::col(Alias::new("rn")).eq(1))
        .and_where(Expr::col(Alias::new("granted")).eq(true))
        .to_owned()
}

/// The SQL condition on `patron` selecting the members of `rule` as of `at`.
pub fn condition(rule: &SegmentRule, at: DateTime<Utc>, thresholds: LifecycleSettings) -> Condition {
    let mut cond = Condition::all().add(patron::Column::Status.ne(PatronStatus::Erased));
    if !rule.patron_types.is_empty() {
        cond = cond.add(patron::Column::PatronType.is_in(rule.patron_types.iter().copied()));
    }
    if !rule.tags.is_empty() {
        let tagged = Query::select()
            .column(patron_tag::Column::PatronId)
            .from(patron_tag::Entity)
            .and_where(patron_tag::Column::Tag.is_in(rule.tags.iter().cloned()))
            .to_owned();
        cond = cond.add(patron::Column::Id.in_subquery(tagged));
    }
    if !rule.home_branches.is_empty() {
        cond = cond.add(patron::Column::HomeBranch.is_in(rule.home_branches.iter().cloned()));
    }
    if !rule.lifecycle_stages.is_empty() {
        cond = cond.add(stages_condition(&rule.lifecycle_stages, at, thresholds));
    }
    if !rule.services_used.is_empty() {
        cond = cond.add(patron::Column::Id.in_subquery(users_of(&rule.services_used)));
    }
    if !rule.services_never_used.is_empty() {
        cond = cond.add(patron::Column::Id.not_in_subquery(users_of(&rule.services_never_used)));
    }
    if let Some(before) = rule.last_activity_before {
        cond = cond
            .add(patron::Column::Id.in_subquery(active_since(None)))
            .add(patron::Column::Id.not_in_subquery(active_since(Some(before))));
    }
    if let Some(after) = rule.last_activity_after {
        cond = cond.add(patron::Column::Id.in_subquery(active_since(Some(after))));
    }
    let purposes = rule.consent_purposes();
    if !purposes.is_empty() {
        cond = cond.add(patron::Column::Id.in_subquery(consenting_to(&purposes)));
    }
    cond
}

/// How many patrons the rule selects as of `at`: one `COUNT`.
pub async fn size(
    db: &impl ConnectionTrait,
    rule: &SegmentRule,
    at: DateTime<Utc>,
    thresholds: LifecycleSettings,
) -> AppResult<u64> {
    Ok(patron::Entity::find().filter(condition(rule, at, thresholds)).count(db).await?)
}

/// Segments counted per statement by [`sizes`] (SQLite allows 500 terms in a compound SELECT).
const SIZES_PER_STATEMENT: usize = 50;

/// The size of each of many rules as of `at`: one `UNION ALL` of counts per 50 rules, so a page
/// of segments costs one statement, not one per segment.
pub async fn sizes(
    db: &impl ConnectionTrait,
    rules: &[(Uuid, SegmentRule)],
    at: DateTime<Utc>,
    thresholds: LifecycleSettings,
) -> AppResult<HashMap<Uuid, u64>> {
    let mut out = HashMap::with_capacity(rules.len());
    for chunk in rules.chunks(SIZES_PER_STATEMENT) {
        let count = |(id, rule): &(Uuid, SegmentRule)| {
            Query::select()
                .expr_as(Expr::val(id.to_string()), Alias::new("k"))
                .expr_as(Expr::col((patron::Entity, patron::Column::Id)).count(), Alias::new("n"))
                .from(patron::Entity)
                .cond_where(condition(rule, at, thresholds))
                .to_owned()
        };
        let mut parts = chunk.iter().map(count);
        let Some(mut statement) = parts.next() else {
            continue;
        };
        for part in parts {
            statement.union(UnionType::All, part);
        }
        let stmt = db.get_database_backend().build(&statement);
        for row in db.query_all_raw(stmt).await? {
            let key: String = row.try_get("", "k")?;
            let n: i64 = row.try_get("", "n")?;
            if let Ok(id) = key.parse::<Uuid>() {
                out.insert(id, super::aggregate::count(n));
            }
        }
    }
    Ok(out)
}

/// `COALESCE(name, '')`, as the patron list sorts (erased patrons are never members, but
/// patrons may lack a name in imported data).
fn member_key() -> SimpleExpr {
    Func::coalesce([Expr::col(patron::Column::Name), Expr::val("")]).into()
}

/// One page of members by name, then id.
pub async fn members(
    db: &impl ConnectionTrait,
    rule: &SegmentRule,
    at: DateTime<Utc>,
    thresholds: LifecycleSettings,
    window: &PageWindow,
) -> AppResult<Page<patron::Model>> {
    if let Some(cursor) = &window.cursor
        && !matches!(cursor.key, SortValue::Text(_))
    {
        let field = if window.backward { "before" } else { "after" };
        return Err(AppError::bad_field(field, "invalid cursor"));
    }
    let keyset = Keyset::new(member_key(), Expr::col(patron::Column::Id), SortDirection::Asc);
    let select = patron::Entity::find().filter(condition(rule, at, thresholds));
    keyset.fetch(db, select, window, |m| Cursor::new(SortValue::Text(m.name.clone().unwrap_or_default()), m.id)).await
}

/// Member ids after `after` in id order, at most `limit` (launching walks the segment with it,
/// so memory stays bounded by `limit`).
pub async fn member_ids(
    db: &impl ConnectionTrait,
    rule: &SegmentRule,
    at: DateTime<Utc>,
    thresholds: LifecycleSettings,
    after: Option<Uuid>,
    limit: u64,
) -> AppResult<Vec<Uuid>> {
    let mut select = patron::Entity::find()
        .select_only()
        .column(patron::Column::Id)
        .filter(condition(rule, at, thresholds))
        .order_by_asc(patron::Column::Id)
        .limit(limit);
    if let Some(after) = after {
        select = select.filter(patron::Column::Id.gt(after));
    }
    Ok(select.into_tuple().all(db).await?)
}

// ---------------------------------------------------------------------------------------------
// Segments

fn list_keyset() -> Keyset {
    Keyset::new(Expr::col(segment::Column::CreatedAt), Expr::col(segment::Column::Id), SortDirection::Asc)
}

/// Segments, oldest first.
pub async fn list(db: &impl ConnectionTrait, viewer: &Viewer, window: &PageWindow) -> AppResult<Page<segment::Model>> {
    check_read(viewer)?;
    window.time_position()?;
    list_keyset().fetch(db, segment::Entity::find(), window, |m| Cursor::new(SortValue::Time(m.created_at), m.id)).await
}

pub async fn count(db: &impl ConnectionTrait, viewer: &Viewer) -> AppResult<u64> {
    check_read(viewer)?;
    Ok(segment::Entity::find().count(db).await?)
}

pub async fn get(db: &impl ConnectionTrait, viewer: &Viewer, id: Uuid) -> AppResult<segment::Model> {
    check_read(viewer)?;
    segment::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::not_found("segment"))
}

/// Segments by id, for loaders (the caller checks access).
pub async fn by_ids(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<segment::Model>> {
    Ok(segment::Entity::find().filter(segment::Column::Id.is_in(ids.iter().copied())).all(db).await?)
}

pub async fn create(db: &impl ConnectionTrait, viewer: &Viewer, input: NewSegment) -> AppResult<segment::Model> {
    check_write(viewer)?;
    let name = validation::required_text(&input.name, "input.name", MAX_NAME_LEN)?;
    let rule = validate_rule(db, &input.rule, "input.rule").await?;
    let now = Utc::now();
    let model = segment::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name),
        rule: Set(rule.to_json()?),
        created_at: Set(now),
        updated_at: Set(now),
    };
    Ok(model.insert(db).await?)
}

/// Change a segment's name or rule. Launched campaigns keep the members they had at launch.
pub async fn update(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    id: Uuid,
    patch: SegmentPatch,
) -> AppResult<segment::Model> {
    check_write(viewer)?;
    let name = patch.name.as_deref().map(|n| validation::required_text(n, "input.name", MAX_NAME_LEN)).transpose()?;
    let rule = match &patch.rule {
        Some(rule) => Some(validate_rule(db, rule, "input.rule").await?),
        None => None,
    };
    let existing = segment::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::not_found("segment"))?;
    let mut model: segment::ActiveModel = existing.into();
    if let Some(name) = name {
        model.name = Set(name);
    }
    if let Some(rule) = rule {
        model.rule = Set(rule.to_json()?);
    }
    model.updated_at = Set(Utc::now());
    Ok(model.update(db).await?)
}

#[cfg(test)]
mod tests {
    use sea_orm::DbBackend;

    use super::*;
    use crate::auth::{Principal, Scope};

    #[test]
    fn the_rule_round_trips_through_json() {
        let rule = SegmentRule {
            patron_types: vec![PatronType::OnlineLearner],
            lifecycle_stages: vec![LifecycleStage::AtRisk, LifecycleStage::Lapsed],
            consent_to_channels: vec![CampaignChannel::InApp],
            last_activity_before: Some(Utc::now()),
            ..SegmentRule::default()
        };
        let json = rule.to_json().unwrap_or_default();
        assert!(json.contains("\"AT_RISK\""), "{json}");
        assert!(json.contains("\"IN_APP\""), "{json}");
        assert_eq!(serde_json::from_str::<SegmentRule>(&json).ok(), Some(rule));
        assert_eq!(serde_json::from_str::<SegmentRule>("{}").ok(), Some(SegmentRule::default()));
        assert!(serde_json::from_str::<SegmentRule>(r#"{"lifecycleStages":["NOPE"]}"#).is_err());
    }

    #[test]
    fn channels_and_purposes_merge_into_one_any_of_list() {
        let rule = SegmentRule {
            consent_to: vec![ConsentPurpose::MarketingSms],
            consent_to_channels: vec![CampaignChannel::Sms, CampaignChannel::Email],
            ..SegmentRule::default()
        };
        assert_eq!(rule.consent_purposes(), vec![ConsentPurpose::MarketingSms, ConsentPurpose::MarketingEmail]);
    }

    #[test]
    fn the_condition_is_portable_sql_that_never_selects_erased_patrons() {
        let rule = SegmentRule {
            patron_types: vec![PatronType::Faculty],
            tags: vec!["x".into()],
            lifecycle_stages: vec![LifecycleStage::Active],
            services_never_used: vec![Uuid::now_v7()],
            last_activity_before: Some(Utc::now()),
            consent_to: vec![ConsentPurpose::MarketingEmail],
            ..SegmentRule::default()
        };
        let select = patron::Entity::find().filter(condition(&rule, Utc::now(), LifecycleSettings::default()));
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            let sql = select.clone().build(backend).to_string();
            assert!(sql.contains("\"status\" <> 'ERASED'"), "{sql}");
            assert!(sql.contains("NOT IN"), "{sql}");
            assert!(sql.contains("ROW_NUMBER"), "{sql}");
        }
    }

    #[test]
    fn campaign_scopes_read_and_write_segments_but_members_need_patron_reads() {
        let partner = |scopes: &[Scope]| {
            Viewer::new(Principal::Partner { client_id: "p".into(), scopes: scopes.iter().copied().collect() })
        };
        assert!(check_read(&partner(&[Scope::CampaignsRead])).is_ok());
        assert!(check_write(&partner(&[Scope::CampaignsRead])).is_err());
        assert!(check_read(&partner(&[Scope::CampaignsWrite])).is_ok());
        assert!(check_read_members(&partner(&[Scope::CampaignsRead])).is_err());
        assert!(check_read_members(&partner(&[Scope::CampaignsRead, Scope::PatronsRead])).is_ok());
        let staff = Viewer::new(Principal::Staff { account_id: "s".into() });
        assert!(check_write(&staff).is_ok() && check_read_members(&staff).is_ok());
        assert!(matches!(check_read(&Viewer::anonymous()), Err(AppError::Unauthenticated(_))));
        let patron = Viewer::new(Principal::Patron { patron_id: Uuid::now_v7() });
        assert!(matches!(check_read(&patron), Err(AppError::Forbidden(_))));
    }
}
