//! Indexes for orderings the API offers that the first migrations did not cover: services and
//! funders by creation time, and patrons by name and by card number as the API sorts them
//! (`COALESCE(x, '')`, so erased patrons without a name or card still page correctly).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Expression indexes in the syntax SQLite and PostgreSQL share.
const CREATE: [&str; 4] = [
    "CREATE INDEX idx_service_created_id ON service (created_at, id)",
    "CREATE INDEX idx_funder_created_id ON funder (created_at, id)",
    "CREATE INDEX idx_patron_name_sort ON patron ((COALESCE(name, '')), id)",
    "CREATE INDEX idx_patron_card_sort ON patron ((COALESCE(card_number, '')), id)",
];

const DROP: [&str; 4] = [
    "DROP INDEX IF EXISTS idx_service_created_id",
    "DROP INDEX IF EXISTS idx_funder_created_id",
    "DROP INDEX IF EXISTS idx_patron_name_sort",
    "DROP INDEX IF EXISTS idx_patron_card_sort",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in CREATE {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in DROP {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
