//! `service`: something the library offers (reference help, e-resources, workshops, ...).

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{index, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Service::Table)
                    .col(pk_uuid(Service::Id))
                    .col(string(Service::Code))
                    .col(string(Service::Name))
                    .col(text(Service::Description).default(""))
                    .col(string(Service::Category))
                    // JSON array of channel names, e.g. `["WEB","CHAT"]`.
                    .col(text(Service::Channels))
                    // JSON array of patron type names; empty means everyone.
                    .col(text(Service::Audience))
                    .col(boolean(Service::Active).default(true))
                    .col(timestamp_with_time_zone(Service::CreatedAt))
                    .col(timestamp_with_time_zone(Service::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        // Both the uniqueness rule on `code` and the index for lookups by code.
        manager.create_index(unique_index("uq_service_code", Service::Table, [Service::Code])).await?;
        manager.create_index(index("idx_service_name_id", Service::Table, [Service::Name, Service::Id])).await?;
        manager.create_index(index("idx_service_category", Service::Table, [Service::Category])).await?;
        manager.create_index(index("idx_service_active", Service::Table, [Service::Active])).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Dropping the table drops its indexes on both SQLite and PostgreSQL.
        manager.drop_table(Table::drop().table(Service::Table).to_owned()).await
    }

    fn use_transaction(&self) -> Option<bool> {
        // SQLite DDL is transactional too: a failed migration leaves nothing half done.
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Service {
    Table,
    Id,
    Code,
    Name,
    Description,
    Category,
    Channels,
    Audience,
    Active,
    CreatedAt,
    UpdatedAt,
}
