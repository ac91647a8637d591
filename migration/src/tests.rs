//! Runs the real migrations against an in-memory SQLite database: up, down, up again, and
//! checks that the foreign key actions and unique indexes behave as intended.

use sea_orm_migration::sea_orm::{ConnectionTrait, Database, DatabaseConnection};

use super::*;

const TABLES: [&str; 7] = ["service", "patron", "patron_tag", "consent_event", "interaction", "funder", "funding"];

async fn connect() -> Result<DatabaseConnection, DbErr> {
    Database::connect("sqlite::memory:").await
}

async fn tables_present(db: &DatabaseConnection) -> Result<Vec<bool>, DbErr> {
    let manager = SchemaManager::new(db);
    let mut present = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        present.push(manager.has_table(table).await?);
    }
    Ok(present)
}

#[tokio::test]
async fn up_down_up_on_sqlite() -> Result<(), DbErr> {
    let db = connect().await?;

    Migrator::up(&db, None).await?;
    assert_eq!(tables_present(&db).await?, vec![true; TABLES.len()]);

    Migrator::down(&db, None).await?;
    assert_eq!(tables_present(&db).await?, vec![false; TABLES.len()]);

    Migrator::up(&db, None).await?;
    assert_eq!(tables_present(&db).await?, vec![true; TABLES.len()]);
    assert!(Migrator::get_pending_migrations(&db).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn constraints_on_sqlite() -> Result<(), DbErr> {
    let db = connect().await?;
    Migrator::up(&db, None).await?;

    let now = "'2026-11-22T10:00:00+00:00'";
    db.execute_unprepared(&format!(
        "INSERT INTO service (id, code, name, category, channels, audience, created_at, updated_at) \
         VALUES ('s1', 'REF', 'Reference', 'REFERENCE', '[\"WEB\"]', '[]', {now}, {now})"
    ))
    .await?;
    db.execute_unprepared(&format!(
        "INSERT INTO patron (id, card_number, patron_type, status, created_at, updated_at) \
         VALUES ('p1', 'C1', 'PUBLIC', 'ACTIVE', {now}, {now}), \
                ('p2', NULL, 'PUBLIC', 'ERASED', {now}, {now}), \
                ('p3', NULL, 'PUBLIC', 'ERASED', {now}, {now})"
    ))
    .await?;
    db.execute_unprepared("INSERT INTO patron_tag (patron_id, tag) VALUES ('p1', 'vip')").await?;
    db.execute_unprepared(&format!(
        "INSERT INTO consent_event (id, patron_id, purpose, granted, source, recorded_at, created_at) \
         VALUES ('c1', 'p1', 'MARKETING_EMAIL', TRUE, 'APP', {now}, {now})"
    ))
    .await?;
    let interaction = |id: &str, external: &str| {
        format!(
            "INSERT INTO interaction (id, patron_id, service_id, patron_type, kind, channel, \
             occurred_at, source, external_id, created_at, updated_at) \
             VALUES ('{id}', 'p1', 's1', 'PUBLIC', 'VISIT', 'WEB', {now}, {external}, {now}, {now})"
        )
    };
    db.execute_unprepared(&interaction("i1", "'lms', 'x1'")).await?;
    db.execute_unprepared(&interaction("i2", "NULL, NULL")).await?;
    db.execute_unprepared(&interaction("i3", "NULL, NULL")).await?;
    // Same (source, external_id): rejected.
    assert!(db.execute_unprepared(&interaction("i4", "'lms', 'x1'")).await.is_err());
    // Duplicate service code: rejected.
    assert!(
        db.execute_unprepared(&format!(
            "INSERT INTO service (id, code, name, category, channels, audience, created_at, updated_at) \
             VALUES ('s2', 'REF', 'Other', 'OTHER', '[]', '[]', {now}, {now})"
        ))
        .await
        .is_err()
    );
    // The service is referenced by interactions: RESTRICT.
    assert!(db.execute_unprepared("DELETE FROM service WHERE id = 's1'").await.is_err());

    // Deleting the patron cascades to tags and consents, and unlinks interactions.
    db.execute_unprepared("DELETE FROM patron WHERE id = 'p1'").await?;
    let count = |sql: &'static str| {
        let db = &db;
        async move {
            let row = db
                .query_one_raw(sea_orm_migration::sea_orm::Statement::from_string(db.get_database_backend(), sql))
                .await?
                .ok_or_else(|| DbErr::Custom("no row".to_owned()))?;
            row.try_get_by_index::<i64>(0)
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM patron_tag").await?, 0);
    assert_eq!(count("SELECT COUNT(*) FROM consent_event").await?, 0);
    assert_eq!(count("SELECT COUNT(*) FROM interaction").await?, 3);
    assert_eq!(count("SELECT COUNT(*) FROM interaction WHERE patron_id IS NULL").await?, 3);

    // Funding: cascades from the funder, restricts the service.
    db.execute_unprepared(&format!(
        "INSERT INTO funder (id, name, kind, created_at, updated_at) \
         VALUES ('f1', 'Arts Council', 'GOVERNMENT', {now}, {now})"
    ))
    .await?;
    db.execute_unprepared(&format!(
        "INSERT INTO funding (id, funder_id, service_id, amount_minor, currency, starts_on, \
         ends_on, created_at, updated_at) \
         VALUES ('g1', 'f1', 's1', 1250000, 'EUR', '2026-01-01', '2026-12-31', {now}, {now})"
    ))
    .await?;
    db.execute_unprepared("DELETE FROM funder WHERE id = 'f1'").await?;
    assert_eq!(count("SELECT COUNT(*) FROM funding").await?, 0);

    Migrator::down(&db, None).await?;
    assert_eq!(tables_present(&db).await?, vec![false; TABLES.len()]);
    Ok(())
}
