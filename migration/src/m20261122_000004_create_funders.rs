//! `funder` (who pays for services) and `funding` (a grant from a funder to a service).

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Funder::Table)
                    .col(pk_uuid(Funder::Id))
                    .col(string(Funder::Name))
                    // GOVERNMENT, FOUNDATION, DONOR, COMPANY, OTHER.
                    .col(string(Funder::Kind))
                    .col(string_null(Funder::ContactEmail))
                    .col(string_null(Funder::Website))
                    .col(text_null(Funder::Notes))
                    .col(timestamp_with_time_zone(Funder::CreatedAt))
                    .col(timestamp_with_time_zone(Funder::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("idx_funder_name_id", Funder::Table, [Funder::Name, Funder::Id])).await?;

        manager
            .create_table(
                Table::create()
                    .table(Funding::Table)
                    .col(pk_uuid(Funding::Id))
                    .col(uuid(Funding::FunderId))
                    .col(uuid(Funding::ServiceId))
                    // Grant reference.
                    .col(string_null(Funding::Name))
                    // Money in integer minor units (e.g. cents) of `currency`.
                    .col(big_integer(Funding::AmountMinor))
                    // ISO 4217 code.
                    .col(string_len(Funding::Currency, 3))
                    .col(date(Funding::StartsOn))
                    .col(date(Funding::EndsOn))
                    .col(timestamp_with_time_zone(Funding::CreatedAt))
                    .col(timestamp_with_time_zone(Funding::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_funding_funder")
                            .from(Funding::Table, Funding::FunderId)
                            .to(Funder::Table, Funder::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_funding_service")
                            .from(Funding::Table, Funding::ServiceId)
                            .to(Service::Table, Service::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        // Also the index for the foreign key on `funder_id`.
        manager
            .create_index(index(
                "idx_funding_funder_starts_on_id",
                Funding::Table,
                [Funding::FunderId, Funding::StartsOn, Funding::Id],
            ))
            .await?;
        // Also the index for the foreign key on `service_id`.
        manager
            .create_index(index(
                "idx_funding_service_starts_on_id",
                Funding::Table,
                [Funding::ServiceId, Funding::StartsOn, Funding::Id],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Funding::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Funder::Table).to_owned()).await
    }

    fn use_transaction(&self) -> Option<bool> {
        // SQLite DDL is transactional too: a failed migration leaves nothing half done.
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Funder {
    Table,
    Id,
    Name,
    Kind,
    ContactEmail,
    Website,
    Notes,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Funding {
    Table,
    Id,
    FunderId,
    ServiceId,
    Name,
    AmountMinor,
    Currency,
    StartsOn,
    EndsOn,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Service {
    Table,
    Id,
}
