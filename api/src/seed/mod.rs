//! The demo library: a realistic, deterministic data set for `--demo`, the tests and the
//! benchmarks.
//!
//! [`generate`] writes about 30 services, the patrons (types, branches, tags, consents), their
//! interactions over the last `days` days and five funders with their grants, in one
//! transaction with multi-row inserts. Everything is drawn from ChaCha streams keyed by the seed
//! and by the owner of each row, and every date is placed relative to an anchor (the start of
//! the current UTC day unless given), so the same seed gives the same rows and ids and only the
//! anchor moves from one day to the next.
//!
//! The structure later features rely on:
//! - patrons follow personas (online scholar, campus studier, researcher, maker, family, career)
//!   weighted by patron type, tags and home branch, so services used together co-occur and
//!   segments differ;
//! - activity is heavy-tailed (lognormal intensity), about 10% never engaged, some lapsed (last
//!   activity more than six months ago), some at risk, some new in the last weeks;
//! - the history follows the academic year, the week and opening hours;
//! - funded services range from large (embedded librarians, the writing centre, data help) to
//!   small (the accessibility lab, the homework club), and every one has patron types that use
//!   it rarely, so monthly funder reports show both visible and suppressed (< 5 patrons) cells.

pub mod accounts;
mod activity;
mod calendar;
mod campaigns;
mod catalog;
mod feedback;
mod names;
mod people;
mod rng;
mod texts;

use std::{collections::HashMap, time::Duration as StdDuration, time::Instant};

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};
use entity::{
    consent_event,
    enums::{PatronStatus, PatronType},
    funder, funding, interaction, patron, patron_tag, service,
};
use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, IntoActiveModel, Iterable, QueryFilter, QueryOrder, QuerySelect, RelationTrait, SqlErr, Statement,
    TransactionTrait, sea_query::JoinType,
};
use uuid::Uuid;

pub use activity::DEMO_SOURCE;
use activity::{Activity, ServiceRef, WALK_IN_SHARE};
use calendar::Frame;
pub use people::{CONSENT_TEXT_VERSION, SHOWCASE_CARD};
use rng::{Part, stream, uuid_at};

/// Seed of the demo library written by `--demo`.
pub const DEMO_SEED: u64 = 42;

/// Ids the CLI needs to mint ready-to-use demo tokens.
#[derive(Debug, Clone)]
pub struct DemoPrincipals {
    pub patron_id: Option<Uuid>,
    pub patron_card: Option<String>,
    pub funder_id: Option<Uuid>,
    pub funder_name: Option<String>,
}

/// How big a library to generate. Services and funders are a fixed catalogue; patrons and
/// interactions scale.
#[derive(Debug, Clone)]
pub struct DemoScale {
    pub patrons: usize,
    /// Total interactions, including anonymous walk-ins (about 1.2%).
    pub interactions: usize,
    /// Length of the history in days before the anchor.
    pub days: u32,
    /// The end of the history; rounded down to midnight UTC. `None`: the start of today.
    pub anchor: Option<DateTime<Utc>>,
}

impl Default for DemoScale {
    /// The `--demo` library: 3,000 patrons, 100,000 interactions over two years.
    fn default() -> Self {
        Self { patrons: 3_000, interactions: 100_000, days: 730, anchor: None }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    pub seed: u64,
    /// Midnight UTC at the end of the history.
    pub anchor: DateTime<Utc>,
    pub services: u64,
    pub patrons: u64,
    pub patron_tags: u64,
    pub consent_events: u64,
    pub interactions: u64,
    /// Interactions without a patron (walk-ins and erased patrons' history).
    pub anonymous_interactions: u64,
    pub rated_interactions: u64,
    /// Interactions with `source = "demo"` and an external id.
    pub synced_interactions: u64,
    pub funders: u64,
    pub fundings: u64,
    /// Answers to the "would you recommend the library" question.
    pub nps_responses: u64,
    pub elapsed: StdDuration,
}

/// Fill an empty database with the demo library; returns whether anything was written.
/// A database that already has a service or a patron is left alone, as is one another
/// instance filled at the same moment.
pub async fn seed_demo_if_empty(db: &DatabaseConnection) -> anyhow::Result<bool> {
    if !is_empty(db).await? {
        tracing::info!("database already has data; demo library not written");
        return Ok(false);
    }
    match generate(db, &DemoScale::default(), DEMO_SEED).await {
        Ok(_) => {
            accounts::seed_demo_accounts(db).await?;
            Ok(true)
        }
        Err(err) if is_unique_violation(&err) => {
            tracing::info!("another instance wrote the demo library first");
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

async fn is_empty(db: &impl ConnectionTrait) -> Result<bool, DbErr> {
    let service =
        service::Entity::find().select_only().column(service::Column::Id).into_tuple::<Uuid>().one(db).await?;
    if service.is_some() {
        return Ok(false);
    }
    let patron = patron::Entity::find().select_only().column(patron::Column::Id).into_tuple::<Uuid>().one(db).await?;
    Ok(patron.is_none())
}

fn is_unique_violation(err: &anyhow::Error) -> bool {
    err.downcast_ref::<DbErr>().is_some_and(|e| matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))))
}

/// The principals for demo tokens: the showcase patron (an active online learner with a rich
/// history and personalisation consent) or, in a database not written by the generator, the
/// active online learner with the most interactions; and the first funder by name.
pub async fn demo_principals(db: &DatabaseConnection) -> anyhow::Result<DemoPrincipals> {
    let mut patron = patron::Entity::find()
        .filter(patron::Column::CardNumber.eq(SHOWCASE_CARD))
        .filter(patron::Column::Status.eq(PatronStatus::Active))
        .one(db)
        .await?;
    if patron.is_none() {
        let busiest = interaction::Entity::find()
            .select_only()
            .column(interaction::Column::PatronId)
            .join(JoinType::InnerJoin, interaction::Relation::Patron.def())
            .filter(patron::Column::PatronType.eq(PatronType::OnlineLearner))
            .filter(patron::Column::Status.eq(PatronStatus::Active))
            .group_by(interaction::Column::PatronId)
            .order_by_desc(interaction::Column::Id.count())
            .order_by_asc(interaction::Column::PatronId)
            .into_tuple::<Option<Uuid>>()
            .one(db)
            .await?
            .flatten();
        if let Some(id) = busiest {
            patron = patron::Entity::find_by_id(id).one(db).await?;
        }
    }
    let funder =
        funder::Entity::find().order_by_asc(funder::Column::Name).order_by_asc(funder::Column::Id).one(db).await?;
    Ok(DemoPrincipals {
        patron_id: patron.as_ref().map(|p| p.id),
        patron_card: patron.and_then(|p| p.card_number),
        funder_id: funder.as_ref().map(|f| f.id),
        funder_name: funder.map(|f| f.name),
    })
}

/// Write a demo library of `scale` drawn from `seed` into an empty database, in one
/// transaction. The same seed, scale and anchor always give the same rows and ids.
#[tracing::instrument(skip(db, scale), fields(patrons = scale.patrons, interactions = scale.interactions))]
pub async fn generate(db: &DatabaseConnection, scale: &DemoScale, seed: u64) -> anyhow::Result<GenerateReport> {
    let started = Instant::now();
    let frame = Frame::new(scale.anchor.unwrap_or_else(Utc::now), i64::from(scale.days));
    let txn = db.begin().await?;
    // A bigger page cache for this connection while the indexes grow (SQLite only; restored
    // before the connection goes back to the pool).
    let cache_size = sqlite_cache_size(&txn).await?;
    if cache_size.is_some() {
        txn.execute_unprepared("PRAGMA cache_size = -131072").await?;
    }
    let mut report = write_library(&txn, &frame, scale, seed).await?;
    if let Some(pages) = cache_size {
        txn.execute_unprepared(&format!("PRAGMA cache_size = {pages}")).await?;
    }
    txn.commit().await?;
    // The demo writes interactions directly: fill the report roll-ups from them.
    crate::domain::rollups::rebuild(db).await?;
    report.elapsed = started.elapsed();
    tracing::info!(
        services = report.services,
        patrons = report.patrons,
        consent_events = report.consent_events,
        interactions = report.interactions,
        anonymous = report.anonymous_interactions,
        rated = report.rated_interactions,
        funders = report.funders,
        fundings = report.fundings,
        nps_responses = report.nps_responses,
        seconds = report.elapsed.as_secs_f64(),
        anchor = %report.anchor,
        "demo library written"
    );
    Ok(report)
}

async fn write_library(
    txn: &DatabaseTransaction,
    frame: &Frame,
    scale: &DemoScale,
    seed: u64,
) -> anyhow::Result<GenerateReport> {
    let phase = Instant::now();
    let mut report = GenerateReport {
        seed,
        anchor: frame.anchor,
        services: 0,
        patrons: 0,
        patron_tags: 0,
        consent_events: 0,
        interactions: 0,
        anonymous_interactions: 0,
        rated_interactions: 0,
        synced_interactions: 0,
        funders: 0,
        fundings: 0,
        nps_responses: 0,
        elapsed: StdDuration::ZERO,
    };

    let (service_rows, services) = build_services(seed, frame);
    report.services = insert_all::<service::ActiveModel, _>(txn, service_rows).await?;

    let (funder_rows, funding_rows) = build_funders(seed, frame, &services);
    report.funders = insert_all::<funder::ActiveModel, _>(txn, funder_rows).await?;
    report.fundings = insert_all::<funding::ActiveModel, _>(txn, funding_rows).await?;

    // Patrons, their tags and consents.
    let mut emails = HashMap::new();
    let mut plans = Vec::with_capacity(scale.patrons);
    let mut patron_rows = Vec::with_capacity(scale.patrons);
    let mut tag_rows = Vec::new();
    let mut consent_rows = Vec::new();
    for index in 0..scale.patrons {
        let mut plan = people::plan_patron(seed, index, frame, &mut emails);
        if let Some(row) = plan.row.take() {
            tag_rows
                .extend(plan.tags.iter().map(|tag| patron_tag::Model { patron_id: row.id, tag: (*tag).to_owned() }));
            patron_rows.push(row);
        }
        consent_rows.append(&mut plan.consents);
        plans.push(plan);
    }
    // In key order, like the interactions below (see `write_batch`).
    patron_rows.sort_unstable_by_key(|row| row.id);
    tag_rows.sort_unstable_by(|a, b| (a.patron_id, &a.tag).cmp(&(b.patron_id, &b.tag)));
    consent_rows.sort_unstable_by_key(|row| row.id);
    report.patrons = insert_all::<patron::ActiveModel, _>(txn, patron_rows).await?;
    report.patron_tags = insert_all::<patron_tag::ActiveModel, _>(txn, tag_rows).await?;
    report.consent_events = insert_all::<consent_event::ActiveModel, _>(txn, consent_rows).await?;
    tracing::debug!(seconds = phase.elapsed().as_secs_f64(), "demo catalogue, funders and patrons written");
    let phase = Instant::now();

    // Interactions, generated patron by patron and written in time-sorted batches.
    let walk_ins = if plans.iter().any(|p| p.weight > 0.0) {
        ((scale.interactions as f64) * WALK_IN_SHARE).round() as usize
    } else {
        scale.interactions
    };
    let weights: Vec<f64> = plans.iter().map(|p| p.weight).collect();
    let quotas = activity::quotas(&weights, scale.interactions.saturating_sub(walk_ins));
    let mut activity = Activity::new(seed, frame, &services);
    let mut buffer: Vec<interaction::Model> = Vec::new();
    let mut written = Written::default();
    // Patrons in id order, so each batch covers one stretch of the patron index.
    let mut work: Vec<(&people::PatronPlan, usize)> = plans.iter().zip(quotas.iter().copied()).collect();
    work.sort_by_key(|(plan, _)| plan.link);
    for (plan, quota) in work {
        activity.patron_history(plan, quota, &mut buffer);
        if buffer.len() >= SORT_BATCH {
            written.batch(txn, &mut buffer).await?;
        }
    }
    let mut walk_in_rng = stream(seed, Part::Anonymous, 0);
    for _ in 0..walk_ins {
        activity.walk_in(&mut walk_in_rng, &mut buffer);
        if buffer.len() >= SORT_BATCH {
            written.batch(txn, &mut buffer).await?;
        }
    }
    written.batch(txn, &mut buffer).await?;
    let written = written.rows;
    report.interactions = written;
    tracing::debug!(seconds = phase.elapsed().as_secs_f64(), rows = written, "demo interactions written");
    report.anonymous_interactions = activity.stats.anonymous;
    report.rated_interactions = activity.stats.rated;
    report.synced_interactions = activity.stats.synced;
    // Segments and a launched campaign, over the history just written.
    campaigns::write(txn, frame, seed).await?;
    report.nps_responses =
        insert_all::<entity::nps_response::ActiveModel, _>(txn, feedback::answers(txn, frame, seed).await?).await?;
    Ok(report)
}

/// Interactions generated before they are sorted and written: the whole default demo at once,
/// bounded memory for benchmark sizes.
const SORT_BATCH: usize = 250_000;

/// The page cache size of an SQLite connection; `None` on other backends.
async fn sqlite_cache_size(txn: &DatabaseTransaction) -> Result<Option<i64>, DbErr> {
    if txn.get_database_backend() != DbBackend::Sqlite {
        return Ok(None);
    }
    let row = txn.query_one_raw(Statement::from_string(DbBackend::Sqlite, "PRAGMA cache_size")).await?;
    Ok(Some(row.map(|r| r.try_get_by_index::<i64>(0)).transpose()?.unwrap_or(-2000)))
}

/// Interactions written so far, and the last external id handed out.
#[derive(Default)]
struct Written {
    rows: u64,
    external: u64,
}

impl Written {
    /// Write and empty `buffer`, in id (so time) order, numbering the synced rows' external ids
    /// in that order. B-tree pages are then filled in order instead of at random, which makes
    /// large inserts several times faster on both backends.
    async fn batch(&mut self, txn: &DatabaseTransaction, buffer: &mut Vec<interaction::Model>) -> Result<(), DbErr> {
        buffer.sort_unstable_by_key(|row| row.id);
        for row in buffer.iter_mut().filter(|row| row.source.is_some()) {
            self.external += 1;
            row.external_id = Some(format!("demo-{:09}", self.external));
        }
        self.rows += insert_all::<interaction::ActiveModel, _>(txn, std::mem::take(buffer)).await?;
        Ok(())
    }
}

/// Rows per multi-row INSERT that keep the bind parameters under the backend's limit
/// (SQLite 32,766; PostgreSQL 65,535).
fn rows_per_statement(backend: DbBackend, columns: usize) -> usize {
    let limit = match backend {
        DbBackend::Sqlite => 32_766,
        _ => 65_535,
    };
    (limit / columns.max(1)).clamp(1, 4_000)
}

/// Insert `rows` with as few statements as the parameter limit allows.
async fn insert_all<A, M>(txn: &DatabaseTransaction, rows: Vec<M>) -> Result<u64, DbErr>
where
    A: ActiveModelTrait + Send,
    M: IntoActiveModel<A> + Send,
{
    let columns = <<A::Entity as EntityTrait>::Column as Iterable>::iter().count();
    let per_statement = rows_per_statement(txn.get_database_backend(), columns);
    let mut rows = rows.into_iter().peekable();
    let mut written = 0;
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(per_statement).map(IntoActiveModel::into_active_model).collect();
        written += <A::Entity as EntityTrait>::insert_many(chunk).exec_without_returning(txn).await?;
    }
    Ok(written)
}

fn build_services(seed: u64, frame: &Frame) -> (Vec<service::Model>, Vec<ServiceRef>) {
    let mut rng = stream(seed, Part::Catalog, 0);
    let mut rows = Vec::with_capacity(catalog::SERVICES.len());
    let mut refs = Vec::with_capacity(catalog::SERVICES.len());
    for spec in catalog::SERVICES {
        // Most services predate the history; a few started during its first months.
        let created_at = frame.day_start(-rng.random_range(30..2_500)) + Duration::seconds(rng.random_range(0..86_400));
        let (active, end_day, updated_at) = match spec.retired_days_ago {
            Some(ago) => {
                let end_day = (frame.days - ago).max(1);
                (false, end_day, frame.day_start(end_day) + Duration::hours(9))
            }
            None => {
                let edited =
                    frame.day_start(-rng.random_range(0..400)) + Duration::seconds(rng.random_range(0..86_400));
                (true, frame.days, edited.max(created_at))
            }
        };
        let id = uuid_at(&mut rng, created_at);
        rows.push(service::Model {
            id,
            code: spec.code.to_owned(),
            name: spec.name.to_owned(),
            description: spec.description.split_whitespace().collect::<Vec<_>>().join(" "),
            category: spec.category,
            channels: service::encode_channels(&spec.channels()),
            audience: service::encode_audience(spec.audience),
            active,
            created_at,
            updated_at,
        });
        refs.push(ServiceRef { spec, id, end_day });
    }
    (rows, refs)
}

/// Grant year `year`: twelve months from the first of the month the history starts in.
fn grant_period(frame: &Frame, year: u32) -> Option<(NaiveDate, NaiveDate)> {
    let first = frame.date(0).with_day(1)?;
    let start = first.checked_add_months(Months::new(12 * year))?;
    let end = start.checked_add_months(Months::new(12))?.pred_opt()?;
    Some((start, end))
}

fn build_funders(seed: u64, frame: &Frame, services: &[ServiceRef]) -> (Vec<funder::Model>, Vec<funding::Model>) {
    let mut rng = stream(seed, Part::Funders, 0);
    let mut funders = Vec::with_capacity(catalog::FUNDERS.len());
    let mut fundings = Vec::new();
    for spec in catalog::FUNDERS {
        let created_at = frame.day_start(-rng.random_range(45..120)) + Duration::seconds(rng.random_range(0..86_400));
        let funder_id = uuid_at(&mut rng, created_at);
        funders.push(funder::Model {
            id: funder_id,
            name: spec.name.to_owned(),
            kind: spec.kind,
            contact_email: Some(spec.contact_email.to_owned()),
            website: Some(spec.website.to_owned()),
            notes: Some(spec.notes.split_whitespace().collect::<Vec<_>>().join(" ")),
            created_at,
            updated_at: created_at,
        });
        for grant in spec.grants {
            let Some(service) = catalog::service_index(grant.service).and_then(|i| services.get(i)) else {
                continue;
            };
            let Some((starts_on, ends_on)) = grant_period(frame, grant.year) else {
                continue;
            };
            // Agreed some weeks before the period starts.
            let agreed = starts_on.and_hms_opt(10, 0, 0).map_or(created_at, |t| t.and_utc())
                - Duration::days(rng.random_range(14..45));
            let agreed = frame.clamp(agreed.max(created_at));
            let label = if starts_on.year() == ends_on.year() {
                format!("{} {}", grant.reference, starts_on.year())
            } else {
                format!("{} {}–{:02}", grant.reference, starts_on.year(), ends_on.year() % 100)
            };
            fundings.push(funding::Model {
                id: uuid_at(&mut rng, agreed),
                funder_id,
                service_id: service.id,
                name: Some(label),
                amount_minor: grant.amount * 100,
                currency: spec.currency.to_owned(),
                starts_on,
                ends_on,
                created_at: agreed,
                updated_at: agreed,
            });
        }
    }
    (funders, fundings)
}
