//! The real migrations run from empty, back down, and up again on the configured database.

use migration::{Migrator, MigratorTrait};
use rapport_tests::db::empty_database;
use sea_orm::Database;

#[tokio::test]
async fn migrations_run_from_empty_down_and_up_again() {
    let database = empty_database().await.unwrap();
    let db = Database::connect(&database.url).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    let applied = Migrator::get_applied_migrations(&db).await.unwrap();
    assert_eq!(applied.len(), Migrator::migrations().len());
    Migrator::down(&db, None).await.unwrap();
    assert!(Migrator::get_applied_migrations(&db).await.unwrap().is_empty());
    Migrator::up(&db, None).await.unwrap();
    assert!(Migrator::get_pending_migrations(&db).await.unwrap().is_empty());
    db.close().await.unwrap();
}
