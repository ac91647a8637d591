//! The benchmark library: a fresh database filled by the demo generator at the chosen scale
//! (personas, heavy-tailed activity, academic-year rhythm, funders and grants), written with
//! multi-row INSERTs in sorted batches, then the report roll-ups rebuilt in SQL.

use std::time::{Duration, Instant};

use anyhow::Context;
use rapport::{
    config::DatabaseSettings,
    seed::{DEMO_SEED, DemoScale},
};
use rapport_tests::db::with_database;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use secrecy::SecretString;
use serde::Serialize;

use crate::{Backend, SetupArgs};

/// A library ready to serve.
pub struct Dataset {
    pub url: String,
    pub name: String,
    pub load: Option<LoadReport>,
}

/// How long loading took.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub patrons: u64,
    pub interactions: u64,
    pub seconds: f64,
    /// Interactions written per second, roll-ups included.
    pub interactions_per_sec: f64,
}

pub fn database_name(setup: &SetupArgs) -> String {
    format!("rapport_bench_{}_{}", setup.patrons, setup.interactions)
}

async fn admin_exec(admin_url: &str, sql: &str) -> anyhow::Result<()> {
    let db = Database::connect(admin_url).await?;
    let result = db.execute_unprepared(sql).await;
    db.close().await?;
    result.with_context(|| sql.to_owned())?;
    Ok(())
}

async fn has_library(url: &str) -> bool {
    let Ok(db) = Database::connect(url).await else {
        return false;
    };
    let backend = db.get_database_backend();
    let row = db.query_one_raw(Statement::from_string(backend, "SELECT count(*) AS n FROM service")).await;
    let _ = db.close().await;
    matches!(row, Ok(Some(row)) if row.try_get::<i64>("", "n").unwrap_or(0) > 0)
}

/// Create (or, with `--reuse`, find) the library of `setup`'s scale.
pub async fn prepare(setup: &SetupArgs) -> anyhow::Result<Dataset> {
    let name = database_name(setup);
    let url = match setup.database {
        Backend::Postgres => with_database(&setup.admin_url, &name),
        Backend::Sqlite => {
            std::fs::create_dir_all(&setup.out)?;
            let path = std::path::absolute(setup.out.join(format!("{name}.db")))?;
            format!("sqlite://{}?mode=rwc", path.display())
        }
    };
    if setup.reuse && has_library(&url).await {
        eprintln!("reusing the library in {name}");
        return Ok(Dataset { url, name, load: None });
    }
    match setup.database {
        Backend::Postgres => {
            admin_exec(&setup.admin_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
            admin_exec(&setup.admin_url, &format!("CREATE DATABASE {name}")).await?;
        }
        Backend::Sqlite => {
            let path = setup.out.join(format!("{name}.db"));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
    let db = connect(&url).await?;
    rapport::db::migrate(&db).await?;
    eprintln!("loading {} patrons and {} interactions into {name} …", setup.patrons, setup.interactions);
    let started = Instant::now();
    // On PostgreSQL the generator writes a base history and SQL multiplies it (see `top_up`);
    // on SQLite it writes everything.
    let base = match setup.database {
        Backend::Postgres => setup.interactions.min(GENERATED_BASE),
        Backend::Sqlite => setup.interactions,
    };
    let scale = DemoScale { patrons: setup.patrons, interactions: base, days: 730, anchor: None };
    let written = rapport::seed::generate(&db, &scale, DEMO_SEED).await?;
    let mut interactions = written.interactions;
    eprintln!(
        "  generated {} patrons and {interactions} interactions in {:.1} s",
        written.patrons,
        started.elapsed().as_secs_f64()
    );
    if setup.database == Backend::Postgres {
        if setup.interactions > base {
            interactions += top_up(&db, (setup.interactions - base) as u64, written.anchor).await?;
            rebuild_rollups(&db).await?;
        }
        // Fresh tables: statistics for the planner, and the visibility map autovacuum would set
        // in time (index-only scans of the roll-ups), before the first query.
        db.execute_unprepared("VACUUM (ANALYZE)").await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    db.close().await?;
    let load = LoadReport {
        patrons: written.patrons,
        interactions,
        seconds,
        interactions_per_sec: interactions as f64 / seconds.max(1e-9),
    };
    eprintln!(
        "loaded {} interactions in {:.1} s ({:.0} interactions/s)",
        load.interactions, load.seconds, load.interactions_per_sec
    );
    Ok(Dataset { url, name, load: Some(load) })
}

/// Interactions the demo generator writes row by row (multi-row INSERTs) before SQL takes over.
const GENERATED_BASE: usize = 100_000;

/// Add `extra` interactions on PostgreSQL by copying the generated history inside the database:
/// each copy keeps its patron, service, kind, channel and rating and moves by a whole number of
/// weeks (weekday and hour kept), wrapped into the 104 weeks before `anchor`, so the mix,
/// heavy tail and weekly rhythm of the generator carry over. Secondary indexes are dropped during
/// the copy and rebuilt after (one sort each instead of millions of random insertions).
async fn top_up(db: &DatabaseConnection, extra: u64, anchor: chrono::DateTime<chrono::Utc>) -> anyhow::Result<u64> {
    let started = Instant::now();
    let base = count(db, "SELECT count(*) AS n FROM interaction").await?.max(1) as u64;
    let copies = extra.div_ceil(base);
    let indexes = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() \
             AND tablename = 'interaction' AND indexdef NOT LIKE 'CREATE UNIQUE%'",
        ))
        .await?;
    let indexes: Vec<(String, String)> = indexes
        .iter()
        .filter_map(|r| Some((r.try_get::<String>("", "indexname").ok()?, r.try_get::<String>("", "indexdef").ok()?)))
        .collect();
    for (name, _) in &indexes {
        db.execute_unprepared(&format!("DROP INDEX IF EXISTS \"{name}\"")).await?;
    }
    let period = 104 * 7 * 86_400_i64;
    let sql = format!(
        "INSERT INTO interaction (id, patron_id, service_id, patron_type, kind, channel, occurred_at, branch, \
         staff_member, rating, comment, staff_notes, source, external_id, created_at, updated_at) \
         SELECT gen_random_uuid(), i.patron_id, i.service_id, i.patron_type, i.kind, i.channel, t.at, i.branch, \
         i.staff_member, i.rating, i.comment, i.staff_notes, NULL, NULL, t.at, t.at \
         FROM interaction i CROSS JOIN generate_series(1, {copies}) AS g(n) \
         CROSS JOIN LATERAL (SELECT to_timestamp({anchor} - mod(({anchor} - extract(epoch FROM i.occurred_at))::bigint \
           + (1 + mod(g.n * 37, 103)) * 604800, {period})) AS at) t \
         LIMIT {extra}",
        anchor = anchor.timestamp(),
    );
    let inserted = db.execute_unprepared(&sql).await?.rows_affected();
    eprintln!("  copied {inserted} interactions in {:.1} s", started.elapsed().as_secs_f64());
    let indexing = Instant::now();
    for (_, definition) in &indexes {
        db.execute_unprepared(definition).await?;
    }
    eprintln!("  rebuilt {} indexes in {:.1} s", indexes.len(), indexing.elapsed().as_secs_f64());
    Ok(inserted)
}

/// The report roll-ups recomputed set-wise (`INSERT .. SELECT .. GROUP BY`), to the same
/// definitions as `rapport::domain::rollups` (UTC days; anonymous interactions count in
/// `interaction_daily` only).
async fn rebuild_rollups(db: &DatabaseConnection) -> anyhow::Result<()> {
    let started = Instant::now();
    for sql in [
        "DELETE FROM interaction_daily",
        "DELETE FROM service_patron_day",
        "DELETE FROM service_patron_first",
        "INSERT INTO interaction_daily (service_id, day, patron_type, channel, interactions, rating_sum, rating_count) \
         SELECT service_id, (occurred_at AT TIME ZONE 'UTC')::date, patron_type, channel, count(*), \
         coalesce(sum(rating), 0), count(rating) FROM interaction GROUP BY 1, 2, 3, 4",
        "INSERT INTO service_patron_day (service_id, day, patron_id, channel, patron_type) \
         SELECT DISTINCT service_id, (occurred_at AT TIME ZONE 'UTC')::date, patron_id, channel, patron_type \
         FROM interaction WHERE patron_id IS NOT NULL",
        "INSERT INTO service_patron_first (service_id, patron_id, first_day) \
         SELECT service_id, patron_id, min(day) FROM service_patron_day GROUP BY 1, 2",
    ] {
        db.execute_unprepared(sql).await.with_context(|| sql.to_owned())?;
    }
    eprintln!("  roll-ups rebuilt in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

async fn count(db: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row =
        db.query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_owned())).await?.context("no row")?;
    Ok(row.try_get::<i64>("", "n")?)
}

/// A connection to the benchmark database, for checks the HTTP API cannot make.
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let settings = DatabaseSettings {
        url: SecretString::from(url.to_owned()),
        max_connections: 4,
        min_connections: 0,
        connect_timeout: Duration::from_secs(5),
        acquire_timeout: Duration::from_secs(30),
    };
    rapport::db::connect(&settings, None).await
}
