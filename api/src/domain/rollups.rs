//! Roll-ups behind funder reports (see the `m20261122_000008_create_rollups` migration).
//!
//! * `interaction_daily` — per (service, UTC day, patron type, channel): interactions,
//!   rating sum and rating count; anonymous interactions count here too.
//! * `service_patron_day` — one row per (service, day, patron, channel, patron type) with at
//!   least one interaction: unique patrons of any period are an exact
//!   `COUNT(DISTINCT patron_id)` over the days of that period.
//! * `service_patron_first` — per (service, patron) the first day of use: "new" patrons of a
//!   period are those whose first day falls in it; "returning" are the other unique patrons.
//!
//! [`apply`] is called inside the transaction that inserts interactions, so the roll-ups and
//! the interactions commit together. [`rebuild`] recomputes everything from `interaction`,
//! reading it in keyset-ordered batches (memory stays bounded by the batch size).
//!
//! Erasure and retention: the roll-ups hold no personal data (patron ids are opaque keys, no
//! foreign key). When a patron is erased or interactions are anonymised the roll-up rows are
//! KEPT unchanged, so published counts do not move. A later [`rebuild`] can only see the
//! interactions that still carry a patron, so after anonymisation it counts those patrons'
//! interactions but no longer their unique-patron rows.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use entity::interaction;
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement, TransactionSession, TransactionTrait, Value,
};
use uuid::Uuid;

use crate::error::AppResult;

/// Rows per multi-row upsert (bind parameters stay far below both databases' limits).
const UPSERT_ROWS: usize = 500;
/// Interactions read per batch by [`rebuild`].
const REBUILD_BATCH: u64 = 5_000;

type DailyKey = (Uuid, NaiveDate, String, String);
type PatronDayKey = (Uuid, NaiveDate, Uuid, String, String);

/// Placeholder `n` (1-based) for the backend.
pub(crate) fn ph(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    }
}

/// Adds `rows` (freshly inserted interactions) to the roll-ups. Call it on the transaction
/// that inserted them.
pub async fn apply<C: ConnectionTrait>(db: &C, rows: &[interaction::Model]) -> Result<(), DbErr> {
    let mut daily: BTreeMap<DailyKey, (i64, i64, i64)> = BTreeMap::new();
    let mut patron_days: BTreeSet<PatronDayKey> = BTreeSet::new();
    let mut firsts: BTreeMap<(Uuid, Uuid), NaiveDate> = BTreeMap::new();
    for row in rows {
        let day = row.occurred_at.date_naive();
        let patron_type = row.patron_type.to_value();
        let channel = row.channel.to_value();
        let cell = daily.entry((row.service_id, day, patron_type.clone(), channel.clone())).or_default();
        cell.0 += 1;
        if let Some(r) = row.rating {
            cell.1 += i64::from(r);
            cell.2 += 1;
        }
        if let Some(patron) = row.patron_id {
            patron_days.insert((row.service_id, day, patron, channel, patron_type));
            let first = firsts.entry((row.service_id, patron)).or_insert(day);
            if day < *first {
                *first = day;
            }
        }
    }
    upsert(db, daily, patron_days, firsts).await
}

async fn upsert<C: ConnectionTrait>(
    db: &C,
    daily: BTreeMap<DailyKey, (i64, i64, i64)>,
    patron_days: BTreeSet<PatronDayKey>,
    firsts: BTreeMap<(Uuid, Uuid), NaiveDate>,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let daily: Vec<_> = daily.into_iter().collect();
    for chunk in daily.chunks(UPSERT_ROWS) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 7);
        let mut tuples = Vec::with_capacity(chunk.len());
        for ((service, day, patron_type, channel), (n, sum, count)) in chunk {
            let base = values.len();
            tuples.push(format!("({})", (1..=7).map(|i| ph(backend, base + i)).collect::<Vec<_>>().join(", ")));
            values.extend([
                Value::from(*service),
                Value::from(*day),
                Value::from(patron_type.clone()),
                Value::from(channel.clone()),
                Value::from(*n),
                Value::from(*sum),
                Value::from(*count),
            ]);
        }
        let sql = format!(
            "INSERT INTO interaction_daily (service_id, day, patron_type, channel, interactions, rating_sum, \
             rating_count) VALUES {} ON CONFLICT (service_id, day, patron_type, channel) DO UPDATE SET \
             interactions = interaction_daily.interactions + excluded.interactions, \
             rating_sum = interaction_daily.rating_sum + excluded.rating_sum, \
             rating_count = interaction_daily.rating_count + excluded.rating_count",
            tuples.join(", ")
        );
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    }
    let patron_days: Vec<_> = patron_days.into_iter().collect();
    for chunk in patron_days.chunks(UPSERT_ROWS) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 5);
        let mut tuples = Vec::with_capacity(chunk.len());
        for (service, day, patron, channel, patron_type) in chunk {
            let base = values.len();
            tuples.push(format!("({})", (1..=5).map(|i| ph(backend, base + i)).collect::<Vec<_>>().join(", ")));
            values.extend([
                Value::from(*service),
                Value::from(*day),
                Value::from(*patron),
                Value::from(channel.clone()),
                Value::from(patron_type.clone()),
            ]);
        }
        let sql = format!(
            "INSERT INTO service_patron_day (service_id, day, patron_id, channel, patron_type) VALUES {} \
             ON CONFLICT (service_id, day, patron_id, channel, patron_type) DO NOTHING",
            tuples.join(", ")
        );
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    }
    let firsts: Vec<_> = firsts.into_iter().collect();
    for chunk in firsts.chunks(UPSERT_ROWS) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 3);
        let mut tuples = Vec::with_capacity(chunk.len());
        for ((service, patron), day) in chunk {
            let base = values.len();
            tuples.push(format!("({})", (1..=3).map(|i| ph(backend, base + i)).collect::<Vec<_>>().join(", ")));
            values.extend([Value::from(*service), Value::from(*patron), Value::from(*day)]);
        }
        let sql = format!(
            "INSERT INTO service_patron_first (service_id, patron_id, first_day) VALUES {} \
             ON CONFLICT (service_id, patron_id) DO UPDATE SET first_day = CASE \
             WHEN excluded.first_day < service_patron_first.first_day THEN excluded.first_day \
             ELSE service_patron_first.first_day END",
            tuples.join(", ")
        );
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    }
    Ok(())
}

/// Moves a rating already counted in `interaction_daily` from `before.rating` to `rating` (a
/// patron rated or re-rated `before`). Call it in the transaction that updates the interaction,
/// so the satisfaction in funder reports follows the rating without a rebuild.
pub async fn rating_changed<C: ConnectionTrait>(
    db: &C,
    before: &interaction::Model,
    rating: Option<i16>,
) -> Result<(), DbErr> {
    let old = before.rating.map(i64::from);
    let new = rating.map(i64::from);
    let sum_delta = new.unwrap_or(0) - old.unwrap_or(0);
    let count_delta = i64::from(new.is_some()) - i64::from(old.is_some());
    if sum_delta == 0 && count_delta == 0 {
        return Ok(());
    }
    let backend = db.get_database_backend();
    // An upsert rather than an UPDATE: a roll-up row missing for any reason is created, and a
    // later rebuild gives the same result either way.
    let sql = format!(
        "INSERT INTO interaction_daily (service_id, day, patron_type, channel, interactions, rating_sum, \
         rating_count) VALUES ({}, {}, {}, {}, 0, {}, {}) ON CONFLICT (service_id, day, patron_type, channel) \
         DO UPDATE SET rating_sum = interaction_daily.rating_sum + excluded.rating_sum, \
         rating_count = interaction_daily.rating_count + excluded.rating_count",
        ph(backend, 1),
        ph(backend, 2),
        ph(backend, 3),
        ph(backend, 4),
        ph(backend, 5),
        ph(backend, 6)
    );
    let values = vec![
        Value::from(before.service_id),
        Value::from(before.occurred_at.date_naive()),
        Value::from(before.patron_type.to_value()),
        Value::from(before.channel.to_value()),
        Value::from(sum_delta),
        Value::from(count_delta),
    ];
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    Ok(())
}

/// What [`rebuild`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildReport {
    pub interactions: u64,
}

/// Empties the roll-ups and recomputes them from `interaction`, in one transaction.
pub async fn rebuild<C>(db: &C) -> AppResult<RebuildReport>
where
    C: ConnectionTrait + TransactionTrait,
{
    let txn = db.begin().await?;
    for table in ["interaction_daily", "service_patron_day", "service_patron_first"] {
        txn.execute_unprepared(&format!("DELETE FROM {table}")).await?;
    }
    let mut after: Option<Uuid> = None;
    let mut total = 0u64;
    loop {
        let mut query = interaction::Entity::find().order_by_asc(interaction::Column::Id).limit(REBUILD_BATCH);
        if let Some(id) = after {
            query = query.filter(interaction::Column::Id.gt(id));
        }
        let rows = query.all(&txn).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.id);
        total += rows.len() as u64;
        apply(&txn, &rows).await?;
        if (rows.len() as u64) < REBUILD_BATCH {
            break;
        }
    }
    txn.commit().await?;
    if db.get_database_backend() == DbBackend::Postgres {
        // Reports read `service_patron_day` by its key alone: after a bulk rewrite, the
        // visibility map lets PostgreSQL answer from the index without visiting the table
        // (several times faster on millions of rows), and fresh statistics pick that plan.
        db.execute_unprepared("VACUUM (ANALYZE) interaction_daily, service_patron_day, service_patron_first").await?;
    }
    Ok(RebuildReport { interactions: total })
}
