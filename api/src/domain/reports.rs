//! Funder reports: per funded service and period, usage and funding figures read from the
//! roll-ups of [`super::rollups`] (cost grows with services × periods, not interactions).
//!
//! # k-anonymity
//! `k` is `RAPPORT_K_ANONYMITY` (default 5, never below 3).
//! 1. A row (one service × period, a service's totals, the overall totals) whose unique
//!    patrons are between 1 and k−1 is suppressed entirely: every patron-derived cell is
//!    `null` with `suppressed: true` (funding attributed stays, it is not patron data).
//!    A cell counting zero patrons identifies nobody and stays visible.
//! 2. A breakdown cell (a channel, a patron type, new or returning patrons) whose distinct
//!    patrons are between 1 and k−1 is suppressed.
//! 3. Complementary suppression, over every additive family — the channels of a row, the
//!    patron types of a row, {new, returning} of a row, the periods of a service (row
//!    interactions, new patrons, each channel, each patron type) and the services of the
//!    overall totals: when the family's total is visible and exactly one member is
//!    suppressed, the visible non-zero member with the smallest value is suppressed too (else
//!    a visible zero member, else the total); when the total is suppressed, so are all
//!    members. The rules are applied until nothing changes. This is deliberately
//!    conservative: a suppressed period can hide a cell of another period (e.g. its new
//!    patrons), because the periods add up to the visible service total.
//!
//! Average satisfaction and rating count are shown only with a visible row.
//!
//! Funding attributed: each grant's amount spread evenly over the days of its period
//! (`amount × overlapping days ÷ grant days`, rounded down), summed over the grants of the
//! service; `null` when the grants of a service use several currencies.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Duration, NaiveDate};
use entity::{funder, funding, service};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, Statement, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::rollups::ph;
use crate::{
    auth::{Capability, Viewer},
    error::{AppError, AppResult},
};

/// Longest range of a report, in days (about three years).
pub const MAX_RANGE_DAYS: i64 = 3 * 366;
/// Longest range of a DAY report.
pub const MAX_DAY_RANGE_DAYS: i64 = 366;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Granularity {
    Day,
    Week,
    Month,
    Quarter,
}

impl Granularity {
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Day => "DAY",
            Granularity::Week => "WEEK",
            Granularity::Month => "MONTH",
            Granularity::Quarter => "QUARTER",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "DAY" => Some(Granularity::Day),
            "WEEK" => Some(Granularity::Week),
            "MONTH" => Some(Granularity::Month),
            "QUARTER" => Some(Granularity::Quarter),
            _ => None,
        }
    }
}

/// One count, possibly suppressed (`value` is then `None`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub value: Option<i64>,
    pub suppressed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakdownRow {
    /// Channel or patron type (the database value, e.g. `IN_PERSON`).
    pub key: String,
    pub interactions: Cell,
    pub unique_patrons: Cell,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub interactions: Cell,
    pub unique_patrons: Cell,
    pub new_patrons: Cell,
    pub returning_patrons: Cell,
    pub average_satisfaction: Option<f64>,
    pub satisfaction_suppressed: bool,
    pub rating_count: Cell,
    pub by_channel: Vec<BreakdownRow>,
    pub by_patron_type: Vec<BreakdownRow>,
    /// Minor units and currency.
    pub funding_attributed: Option<(i64, String)>,
    pub cost_per_interaction: Option<(i64, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodReport {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub metrics: Metrics,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceReport {
    pub service_id: Uuid,
    pub service_name: String,
    pub periods: Vec<PeriodReport>,
    pub totals: Metrics,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FundingReport {
    pub funder_id: Uuid,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub granularity: Granularity,
    pub k: u32,
    pub services: Vec<ServiceReport>,
    pub totals: Metrics,
    pub nps: Nps,
}

/// Answers to "would you recommend the library" given during the report range by patrons who
/// used at least one of the funded services in it. Suppressed (with every figure `None`) when
/// between 1 and k−1 patrons answered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Nps {
    pub respondents: Cell,
    /// Promoters (9–10) % minus detractors (0–6) %, −100 to 100.
    pub score: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
pub struct ReportQuery {
    pub funder_id: Uuid,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub granularity: Granularity,
}

/// FUNDER: own funder only; STAFF/ADMIN: any; PARTNER: `reports:read`; others denied.
pub fn authorize(viewer: &Viewer, funder_id: Uuid) -> AppResult<()> {
    if let Some(own) = viewer.funder_id() {
        return if own == funder_id { Ok(()) } else { Err(AppError::forbidden("a funder reads only its own reports")) };
    }
    viewer.require(Capability::ReadReports)
}

/// Checks the range and splits it into periods (clipped to the range).
pub fn periods(from: NaiveDate, to: NaiveDate, granularity: Granularity) -> AppResult<Vec<(NaiveDate, NaiveDate)>> {
    if to < from {
        return Err(AppError::bad_field("to", "must not be before `from`"));
    }
    let days = (to - from).num_days() + 1;
    if days > MAX_RANGE_DAYS {
        return Err(AppError::bad_field("to", format!("a report covers at most {MAX_RANGE_DAYS} days")));
    }
    if granularity == Granularity::Day && days > MAX_DAY_RANGE_DAYS {
        return Err(AppError::bad_field("granularity", format!("DAY reports cover at most {MAX_DAY_RANGE_DAYS} days")));
    }
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let natural_end = match granularity {
            Granularity::Day => start,
            Granularity::Week => start + Duration::days(6 - i64::from(start.weekday().num_days_from_monday())),
            Granularity::Month => month_end(start.year(), start.month()),
            Granularity::Quarter => month_end(start.year(), ((start.month() - 1) / 3) * 3 + 3),
        };
        let end = natural_end.min(to);
        out.push((start, end));
        start = end + Duration::days(1);
    }
    Ok(out)
}

fn month_end(year: i32, month: u32) -> NaiveDate {
    let (y, m) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).map(|d| d - Duration::days(1)).unwrap_or(NaiveDate::MAX)
}

/// The cache key of a report (the content does not depend on the authorised viewer).
pub fn cache_key(q: &ReportQuery, k: u32) -> String {
    format!("report:funding:{}:{}:{}:{}:k{k}", q.funder_id, q.from, q.to, q.granularity.as_str())
}

/// Raw (unsuppressed) figures of one row.
#[derive(Debug, Default, Clone)]
struct Raw {
    interactions: i64,
    rating_sum: i64,
    rating_count: i64,
    unique: i64,
    new: i64,
    channels: BTreeMap<String, (i64, i64)>,
    types: BTreeMap<String, (i64, i64)>,
}

/// Builds the report (authorisation is the caller's: see [`authorize`]).
pub async fn funding_report<C: ConnectionTrait>(db: &C, q: ReportQuery, k: u32) -> AppResult<FundingReport> {
    let k = k.max(3);
    let buckets = periods(q.from, q.to, q.granularity)?;
    if funder::Entity::find_by_id(q.funder_id).one(db).await?.is_none() {
        return Err(AppError::not_found("funder"));
    }
    let grants = funding::Entity::find()
        .filter(funding::Column::FunderId.eq(q.funder_id))
        .filter(funding::Column::StartsOn.lte(q.to))
        .filter(funding::Column::EndsOn.gte(q.from))
        .all(db)
        .await?;
    let mut service_ids: Vec<Uuid> = grants.iter().map(|g| g.service_id).collect();
    service_ids.sort();
    service_ids.dedup();
    let mut services = if service_ids.is_empty() {
        Vec::new()
    } else {
        service::Entity::find()
            .filter(service::Column::Id.is_in(service_ids.clone()))
            .order_by_asc(service::Column::Name)
            .order_by_asc(service::Column::Id)
            .all(db)
            .await?
    };
    services.retain(|s| service_ids.contains(&s.id));

    let whole = [(q.from, q.to)];
    // Per service and period, per service over the range, over all services and the range.
    let mut per_period: HashMap<(Uuid, usize), Raw> = HashMap::new();
    let mut per_service: HashMap<Uuid, Raw> = HashMap::new();
    let mut overall = Raw::default();
    if !service_ids.is_empty() {
        daily(db, &service_ids, &buckets, &mut per_period, &mut per_service, &mut overall, q).await?;
        for (level, c) in distinct_counts(db, &service_ids, &buckets).await? {
            match level {
                Level::Period(svc, b) => merge_distinct(per_period.entry((svc, b)).or_default(), c),
                Level::Service(svc) => merge_distinct(per_service.entry(svc).or_default(), c),
                Level::Overall => merge_distinct(&mut overall, c),
            }
        }
        for ((svc, b), n) in new_patrons(db, &service_ids, &buckets, true).await? {
            if let Some(svc) = svc {
                per_period.entry((svc, b)).or_default().new = n;
            }
        }
        for ((svc, _), n) in new_patrons(db, &service_ids, &whole, true).await? {
            if let Some(svc) = svc {
                per_service.entry(svc).or_default().new = n;
            }
        }
        for (_, n) in new_patrons(db, &service_ids, &whole, false).await? {
            overall.new = n;
        }
    }

    // Suppression over an arena of rows.
    let mut arena = Arena::default();
    let overall_row = arena.row(&overall, k);
    let mut service_rows = Vec::new();
    for svc in &services {
        let total = arena.row(per_service.get(&svc.id).unwrap_or(&Raw::default()), k);
        let rows: Vec<usize> =
            (0..buckets.len()).map(|b| arena.row(per_period.get(&(svc.id, b)).unwrap_or(&Raw::default()), k)).collect();
        arena.additive(total, &rows);
        service_rows.push((total, rows));
    }
    let totals_of_services: Vec<usize> = service_rows.iter().map(|(t, _)| *t).collect();
    arena.additive_main(overall_row, &totals_of_services);
    arena.settle();

    let grant_money = |svc: Option<Uuid>, a: NaiveDate, b: NaiveDate| attributed(&grants, svc, a, b);
    let out_services = services
        .iter()
        .zip(service_rows)
        .map(|(svc, (total, rows))| ServiceReport {
            service_id: svc.id,
            service_name: svc.name.clone(),
            periods: buckets
                .iter()
                .zip(rows)
                .map(|(&(a, b), row)| PeriodReport {
                    start: a,
                    end: b,
                    metrics: arena.metrics(row, grant_money(Some(svc.id), a, b)),
                })
                .collect(),
            totals: arena.metrics(total, grant_money(Some(svc.id), q.from, q.to)),
        })
        .collect();
    Ok(FundingReport {
        funder_id: q.funder_id,
        from: q.from,
        to: q.to,
        granularity: q.granularity,
        k,
        services: out_services,
        totals: arena.metrics(overall_row, grant_money(None, q.from, q.to)),
        nps: nps(db, &service_ids, q, k).await?,
    })
}

/// The [`Nps`] of the users of `services` over the report range (each respondent's latest
/// answer in the range counts once).
async fn nps<C: ConnectionTrait>(db: &C, services: &[Uuid], q: ReportQuery, k: u32) -> AppResult<Nps> {
    let empty = Nps { respondents: Cell { value: Some(0), suppressed: false }, score: None };
    if services.is_empty() {
        return Ok(empty);
    }
    let backend = db.get_database_backend();
    let mut values = Vec::new();
    let (a, b) = range_binds(backend, &[(q.from, q.to)], &mut values);
    let list = in_list(backend, services, &mut values);
    values.push(Value::from(q.from.and_time(chrono::NaiveTime::MIN).and_utc()));
    let since = ph(backend, values.len());
    values.push(Value::from((q.to + Duration::days(1)).and_time(chrono::NaiveTime::MIN).and_utc()));
    let until = ph(backend, values.len());
    // Latest answer per patron in the range, among patrons with a day of use in it.
    let sql = format!(
        "SELECT COUNT(*) AS n, \
         COALESCE(SUM(CASE WHEN score >= 9 THEN 1 ELSE 0 END), 0) AS promoters, \
         COALESCE(SUM(CASE WHEN score <= 6 THEN 1 ELSE 0 END), 0) AS detractors \
         FROM (SELECT r.patron_id, r.score, ROW_NUMBER() OVER (PARTITION BY r.patron_id \
         ORDER BY r.answered_at DESC, r.id DESC) AS rn FROM nps_response r \
         WHERE r.patron_id IN (SELECT patron_id FROM service_patron_day WHERE day >= {a} AND day <= {b} \
         AND service_id IN ({list})) AND r.answered_at >= {since} AND r.answered_at < {until}) latest \
         WHERE rn = 1"
    );
    let Some(row) = db.query_one_raw(Statement::from_sql_and_values(backend, sql, values)).await? else {
        return Ok(empty);
    };
    let n: i64 = row.try_get("", "n")?;
    let promoters: i64 = row.try_get("", "promoters")?;
    let detractors: i64 = row.try_get("", "detractors")?;
    if n > 0 && n < i64::from(k) {
        return Ok(Nps { respondents: Cell { value: None, suppressed: true }, score: None });
    }
    Ok(Nps {
        respondents: Cell { value: Some(n), suppressed: false },
        score: (n > 0).then(|| 100.0 * (promoters - detractors) as f64 / n as f64),
    })
}

fn attributed(grants: &[funding::Model], svc: Option<Uuid>, a: NaiveDate, b: NaiveDate) -> Option<(i64, String)> {
    let mut currency: Option<&str> = None;
    let mut sum: i128 = 0;
    for g in grants.iter().filter(|g| svc.is_none_or(|s| s == g.service_id)) {
        match currency {
            Some(c) if c != g.currency => return None,
            _ => currency = Some(&g.currency),
        }
        let start = g.starts_on.max(a);
        let end = g.ends_on.min(b);
        if end < start {
            continue;
        }
        let overlap = i128::from((end - start).num_days() + 1);
        let days = i128::from(((g.ends_on - g.starts_on).num_days() + 1).max(1));
        sum += i128::from(g.amount_minor) * overlap / days;
    }
    currency.map(|c| (i64::try_from(sum).unwrap_or(i64::MAX), c.to_owned()))
}

fn merge_distinct(raw: &mut Raw, c: Distinct) {
    raw.unique = c.total;
    for (key, n) in c.channels {
        raw.channels.entry(key).or_default().1 = n;
    }
    for (key, n) in c.types {
        raw.types.entry(key).or_default().1 = n;
    }
}

#[derive(Default)]
struct Distinct {
    total: i64,
    channels: BTreeMap<String, i64>,
    types: BTreeMap<String, i64>,
}

/// `CASE WHEN col BETWEEN .. THEN 0 .. END` over the buckets, plus its bind values.
fn bucket_case(backend: DbBackend, col: &str, buckets: &[(NaiveDate, NaiveDate)], values: &mut Vec<Value>) -> String {
    let mut sql = String::from("CAST(CASE");
    for (i, (a, b)) in buckets.iter().enumerate() {
        let pa = ph(backend, values.len() + 1);
        let pb = ph(backend, values.len() + 2);
        values.push(Value::from(*a));
        values.push(Value::from(*b));
        sql.push_str(&format!(" WHEN {col} >= {pa} AND {col} <= {pb} THEN {i}"));
    }
    sql.push_str(" END AS BIGINT)");
    sql
}

fn in_list(backend: DbBackend, ids: &[Uuid], values: &mut Vec<Value>) -> String {
    let mut parts = Vec::with_capacity(ids.len());
    for id in ids {
        values.push(Value::from(*id));
        parts.push(ph(backend, values.len()));
    }
    parts.join(", ")
}

fn range_binds(backend: DbBackend, buckets: &[(NaiveDate, NaiveDate)], values: &mut Vec<Value>) -> (String, String) {
    let first = buckets.first().map(|b| b.0).unwrap_or(NaiveDate::MIN);
    let last = buckets.last().map(|b| b.1).unwrap_or(NaiveDate::MIN);
    values.push(Value::from(first));
    let a = ph(backend, values.len());
    values.push(Value::from(last));
    (a, ph(backend, values.len()))
}

async fn daily<C: ConnectionTrait>(
    db: &C,
    services: &[Uuid],
    buckets: &[(NaiveDate, NaiveDate)],
    per_period: &mut HashMap<(Uuid, usize), Raw>,
    per_service: &mut HashMap<Uuid, Raw>,
    overall: &mut Raw,
    q: ReportQuery,
) -> AppResult<()> {
    let backend = db.get_database_backend();
    let mut values = Vec::new();
    let case = bucket_case(backend, "day", buckets, &mut values);
    let list = in_list(backend, services, &mut values);
    let (a, b) = range_binds(backend, &[(q.from, q.to)], &mut values);
    let sql = format!(
        "SELECT service_id, {case} AS b, patron_type, channel, interactions, rating_sum, rating_count \
         FROM interaction_daily WHERE service_id IN ({list}) AND day >= {a} AND day <= {b}"
    );
    for row in db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await? {
        let svc: Uuid = row.try_get("", "service_id")?;
        let bucket: i64 = row.try_get("", "b")?;
        let patron_type: String = row.try_get("", "patron_type")?;
        let channel: String = row.try_get("", "channel")?;
        let n: i64 = row.try_get("", "interactions")?;
        let sum: i64 = row.try_get("", "rating_sum")?;
        let count: i64 = row.try_get("", "rating_count")?;
        let bucket = usize::try_from(bucket).unwrap_or_default();
        for raw in [per_period.entry((svc, bucket)).or_default(), per_service.entry(svc).or_default(), &mut *overall] {
            raw.interactions += n;
            raw.rating_sum += sum;
            raw.rating_count += count;
            raw.channels.entry(channel.clone()).or_default().0 += n;
            raw.types.entry(patron_type.clone()).or_default().0 += n;
        }
    }
    Ok(())
}

/// Where a distinct count belongs: a service in a period, a service over the range, or all
/// services over the range.
enum Level {
    Period(Uuid, usize),
    Service(Uuid),
    Overall,
}

/// Exact distinct patrons at every [`Level`]: total, per channel, per patron type. On
/// PostgreSQL one statement with `GROUPING SETS` reads the roll-up once (an index-only scan of
/// its key); SQLite has no grouping sets and gets three statements per level.
async fn distinct_counts<C: ConnectionTrait>(
    db: &C,
    services: &[Uuid],
    buckets: &[(NaiveDate, NaiveDate)],
) -> AppResult<Vec<(Level, Distinct)>> {
    let backend = db.get_database_backend();
    if backend != DbBackend::Postgres {
        let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else { return Ok(Vec::new()) };
        let whole = [(first.0, last.1)];
        let mut out = Vec::new();
        for ((svc, b), c) in distinct(db, services, buckets, true).await? {
            out.extend(svc.map(|svc| (Level::Period(svc, b), c)));
        }
        for ((svc, _), c) in distinct(db, services, &whole, true).await? {
            out.extend(svc.map(|svc| (Level::Service(svc), c)));
        }
        out.extend(distinct(db, services, &whole, false).await?.into_values().map(|c| (Level::Overall, c)));
        return Ok(out);
    }
    let mut values = Vec::new();
    let case = bucket_case(backend, "day", buckets, &mut values);
    let list = in_list(backend, services, &mut values);
    let (a, b) = range_binds(backend, buckets, &mut values);
    // `g` has a bit set for each of (service_id, b, channel, patron_type) NOT grouped on.
    let sql = format!(
        "SELECT service_id, b, channel, patron_type, GROUPING(service_id, b, channel, patron_type) AS g, \
         COUNT(DISTINCT patron_id) AS n FROM (SELECT service_id, patron_id, channel, patron_type, {case} AS b \
         FROM service_patron_day WHERE service_id IN ({list}) AND day >= {a} AND day <= {b}) t \
         GROUP BY GROUPING SETS ((service_id, b), (service_id, b, channel), (service_id, b, patron_type), \
         (service_id), (service_id, channel), (service_id, patron_type), (), (channel), (patron_type))"
    );
    let mut by_level: HashMap<(Option<Uuid>, Option<usize>), Distinct> = HashMap::new();
    for row in db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await? {
        let g: i32 = row.try_get("", "g")?;
        let svc: Option<Uuid> = if g & 8 == 0 { row.try_get("", "service_id")? } else { None };
        let bucket: Option<i64> = if g & 4 == 0 { row.try_get("", "b")? } else { None };
        let n: i64 = row.try_get("", "n")?;
        let entry = by_level.entry((svc, bucket.map(|b| usize::try_from(b).unwrap_or_default()))).or_default();
        if g & 2 == 0 {
            let channel: String = row.try_get("", "channel")?;
            entry.channels.insert(channel, n);
        } else if g & 1 == 0 {
            let patron_type: String = row.try_get("", "patron_type")?;
            entry.types.insert(patron_type, n);
        } else {
            entry.total = n;
        }
    }
    Ok(by_level
        .into_iter()
        .filter_map(|(key, c)| {
            let level = match key {
                (Some(svc), Some(b)) => Level::Period(svc, b),
                (Some(svc), None) => Level::Service(svc),
                (None, None) => Level::Overall,
                (None, Some(_)) => return None,
            };
            Some((level, c))
        })
        .collect())
}

/// Exact distinct patrons per (service?, bucket): total, per channel, per patron type.
async fn distinct<C: ConnectionTrait>(
    db: &C,
    services: &[Uuid],
    buckets: &[(NaiveDate, NaiveDate)],
    by_service: bool,
) -> AppResult<HashMap<(Option<Uuid>, usize), Distinct>> {
    let backend = db.get_database_backend();
    let mut out: HashMap<(Option<Uuid>, usize), Distinct> = HashMap::new();
    for dim in [None, Some("channel"), Some("patron_type")] {
        let mut values = Vec::new();
        let case = bucket_case(backend, "day", buckets, &mut values);
        let list = in_list(backend, services, &mut values);
        let (a, b) = range_binds(backend, buckets, &mut values);
        let svc_group = if by_service { "service_id, " } else { "" };
        let (dim_sel, dim_group) = match dim {
            Some(d) => (format!("{d} AS dim"), format!(", {d}")),
            None => ("'' AS dim".to_owned(), String::new()),
        };
        let sql = format!(
            "SELECT {svc_group}b, {dim_sel}, COUNT(DISTINCT patron_id) AS n FROM (SELECT service_id, patron_id, \
             channel, patron_type, {case} AS b FROM service_patron_day WHERE service_id IN ({list}) AND day >= {a} \
             AND day <= {b}) t GROUP BY {svc_group}b{dim_group}"
        );
        for row in db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await? {
            let service: Option<Uuid> = if by_service { Some(row.try_get("", "service_id")?) } else { None };
            let bucket: i64 = row.try_get("", "b")?;
            let key: String = row.try_get("", "dim")?;
            let n: i64 = row.try_get("", "n")?;
            let entry = out.entry((service, usize::try_from(bucket).unwrap_or_default())).or_default();
            match dim {
                None => entry.total = n,
                Some("channel") => {
                    entry.channels.insert(key, n);
                }
                Some(_) => {
                    entry.types.insert(key, n);
                }
            }
        }
    }
    Ok(out)
}

/// Patrons whose first day with the service (or with any of the services) is in a bucket.
async fn new_patrons<C: ConnectionTrait>(
    db: &C,
    services: &[Uuid],
    buckets: &[(NaiveDate, NaiveDate)],
    by_service: bool,
) -> AppResult<Vec<((Option<Uuid>, usize), i64)>> {
    let backend = db.get_database_backend();
    let mut values = Vec::new();
    // Bind in the order the placeholders appear (SQLite's `?` are positional).
    let case = bucket_case(backend, "f", buckets, &mut values);
    let list = in_list(backend, services, &mut values);
    let (a, b) = range_binds(backend, buckets, &mut values);
    let svc_group = if by_service { "service_id, " } else { "" };
    let sql = format!(
        "SELECT {svc_group}{case} AS b, COUNT(*) AS n FROM (SELECT {svc_group}patron_id, MIN(first_day) AS f \
         FROM service_patron_first WHERE service_id IN ({list}) GROUP BY {svc_group}patron_id) t \
         WHERE f >= {a} AND f <= {b} GROUP BY {svc_group}b"
    );
    let mut out = Vec::new();
    for row in db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await? {
        let service: Option<Uuid> = if by_service { Some(row.try_get("", "service_id")?) } else { None };
        let bucket: i64 = row.try_get("", "b")?;
        let n: i64 = row.try_get("", "n")?;
        out.push(((service, usize::try_from(bucket).unwrap_or_default()), n));
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy)]
struct ArenaCell {
    value: i64,
    suppressed: bool,
}

struct ArenaRow {
    raw: Raw,
    main: usize,
    unique: usize,
    new: usize,
    returning: usize,
    channels: BTreeMap<String, (usize, usize)>,
    types: BTreeMap<String, (usize, usize)>,
}

/// Cells plus the rules linking them (see the module documentation).
#[derive(Default)]
struct Arena {
    cells: Vec<ArenaCell>,
    rows: Vec<ArenaRow>,
    /// (total, members): additive families.
    families: Vec<(usize, Vec<usize>)>,
    /// (master, dependants): a suppressed master suppresses its dependants.
    links: Vec<(usize, Vec<usize>)>,
}

impl Arena {
    fn cell(&mut self, value: i64, patrons: i64, k: u32) -> usize {
        let suppressed = patrons > 0 && patrons < i64::from(k);
        self.cells.push(ArenaCell { value, suppressed });
        self.cells.len() - 1
    }

    fn row(&mut self, raw: &Raw, k: u32) -> usize {
        let main = self.cell(raw.interactions, raw.unique, k);
        let unique = self.cell(raw.unique, 0, k);
        let new = self.cell(raw.new, raw.new, k);
        let returning_n = (raw.unique - raw.new).max(0);
        let returning = self.cell(returning_n, returning_n, k);
        let mut channels = BTreeMap::new();
        for (key, &(n, p)) in &raw.channels {
            channels.insert(key.clone(), (self.cell(n, p, k), self.cell(p, 0, k)));
        }
        let mut types = BTreeMap::new();
        for (key, &(n, p)) in &raw.types {
            types.insert(key.clone(), (self.cell(n, p, k), self.cell(p, 0, k)));
        }
        let mut dependants = vec![unique, new, returning];
        dependants.extend(channels.values().flat_map(|&(a, b)| [a, b]));
        dependants.extend(types.values().flat_map(|&(a, b)| [a, b]));
        self.links.push((main, dependants));
        for &(a, b) in channels.values().chain(types.values()) {
            self.links.push((a, vec![b]));
        }
        self.families.push((main, channels.values().map(|c| c.0).collect()));
        self.families.push((main, types.values().map(|c| c.0).collect()));
        self.families.push((unique, vec![new, returning]));
        self.rows.push(ArenaRow { raw: raw.clone(), main, unique, new, returning, channels, types });
        self.rows.len() - 1
    }

    /// Periods of a service: row interactions, new patrons, each channel and patron type add up.
    fn additive(&mut self, total: usize, rows: &[usize]) {
        self.additive_main(total, rows);
        let t = &self.rows[total];
        let new_family = (t.new, rows.iter().map(|&r| self.rows[r].new).collect::<Vec<_>>());
        let mut families = vec![new_family];
        for (key, &(cell, _)) in &t.channels {
            families.push((cell, rows.iter().filter_map(|&r| self.rows[r].channels.get(key).map(|c| c.0)).collect()));
        }
        for (key, &(cell, _)) in &t.types {
            families.push((cell, rows.iter().filter_map(|&r| self.rows[r].types.get(key).map(|c| c.0)).collect()));
        }
        self.families.extend(families);
    }

    fn additive_main(&mut self, total: usize, rows: &[usize]) {
        let members = rows.iter().map(|&r| self.rows[r].main).collect();
        self.families.push((self.rows[total].main, members));
    }

    /// Suppresses `cell` and, through the links, everything that depends on it.
    fn suppress(cells: &mut [ArenaCell], links: &HashMap<usize, Vec<usize>>, cell: usize) {
        let mut stack = vec![cell];
        while let Some(c) = stack.pop() {
            if !cells[c].suppressed {
                cells[c].suppressed = true;
            }
            if let Some(deps) = links.get(&c) {
                stack.extend(deps.iter().copied().filter(|&d| !cells[d].suppressed));
            }
        }
    }

    fn settle(&mut self) {
        let mut links: HashMap<usize, Vec<usize>> = HashMap::new();
        for (master, dependants) in &self.links {
            links.entry(*master).or_default().extend(dependants);
        }
        let initially: Vec<usize> = (0..self.cells.len()).filter(|&c| self.cells[c].suppressed).collect();
        for c in initially {
            Self::suppress(&mut self.cells, &links, c);
        }
        loop {
            let mut changed = false;
            for (total, members) in &self.families {
                if self.cells[*total].suppressed {
                    for &m in members {
                        if !self.cells[m].suppressed {
                            Self::suppress(&mut self.cells, &links, m);
                            changed = true;
                        }
                    }
                    continue;
                }
                if members.iter().filter(|&&m| self.cells[m].suppressed).count() != 1 {
                    continue;
                }
                // The smallest visible non-zero member; else a visible zero; else the total.
                let pick = members
                    .iter()
                    .copied()
                    .filter(|&m| !self.cells[m].suppressed)
                    .min_by_key(|&m| (self.cells[m].value == 0, self.cells[m].value, m));
                let target = pick.unwrap_or(*total);
                Self::suppress(&mut self.cells, &links, target);
                changed = true;
            }
            if !changed {
                break;
            }
        }
    }

    fn out(&self, cell: usize) -> Cell {
        let c = self.cells[cell];
        if c.suppressed {
            Cell { value: None, suppressed: true }
        } else {
            Cell { value: Some(c.value), suppressed: false }
        }
    }

    fn metrics(&self, row: usize, funding: Option<(i64, String)>) -> Metrics {
        let r = &self.rows[row];
        let hidden = self.cells[r.main].suppressed;
        let breakdown = |map: &BTreeMap<String, (usize, usize)>| {
            map.iter()
                .map(|(key, &(n, p))| BreakdownRow {
                    key: key.clone(),
                    interactions: self.out(n),
                    unique_patrons: self.out(p),
                })
                .collect()
        };
        let interactions = self.out(r.main);
        let cost_per_interaction = match (&funding, interactions.value) {
            (Some((amount, currency)), Some(n)) if n > 0 => Some((amount / n, currency.clone())),
            _ => None,
        };
        Metrics {
            interactions,
            unique_patrons: self.out(r.unique),
            new_patrons: self.out(r.new),
            returning_patrons: self.out(r.returning),
            average_satisfaction: if hidden || r.raw.rating_count == 0 {
                None
            } else {
                Some(r.raw.rating_sum as f64 / r.raw.rating_count as f64)
            },
            satisfaction_suppressed: hidden,
            rating_count: if hidden {
                Cell { value: None, suppressed: true }
            } else {
                Cell { value: Some(r.raw.rating_count), suppressed: false }
            },
            by_channel: breakdown(&r.channels),
            by_patron_type: breakdown(&r.types),
            funding_attributed: funding,
            cost_per_interaction,
        }
    }
}

/// How long a computed report is served from the cache.
pub const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Authorises, validates, then serves the report from the cache or computes and caches it.
pub async fn report_for(state: &crate::state::AppState, viewer: &Viewer, q: ReportQuery) -> AppResult<FundingReport> {
    authorize(viewer, q.funder_id)?;
    periods(q.from, q.to, q.granularity)?;
    let k = state.settings.k_anonymity.max(3);
    let key = cache_key(&q, k);
    if let Some(hit) = state.cache.get_json::<FundingReport>(&key).await {
        return Ok(hit);
    }
    let report = funding_report(&state.db, q, k).await?;
    state.cache.set_json(&key, &report, CACHE_TTL).await;
    Ok(report)
}
