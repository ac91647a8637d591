//! Roll-ups for funder reports, maintained in the same transaction as interaction inserts
//! and rebuildable from `interaction` (`rapport rebuild-rollups`).
//!
//! * `interaction_daily`: per (service, day, patron type, channel): interactions, rating sum
//!   and rating count (anonymous interactions included).
//! * `service_patron_day`: one row per (service, day, patron, channel, patron type) where the
//!   patron used the service: exact distinct-patron counts over any set of days.
//! * `service_patron_first`: per (service, patron) the first day the patron used the service
//!   (new vs returning patrons).
//!
//! They hold no personal data: patron ids are opaque keys without foreign keys, kept when
//! the patron is erased or interactions are anonymised, so past counts do not change.

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
                    .table(InteractionDaily::Table)
                    .col(uuid(InteractionDaily::ServiceId))
                    .col(date(InteractionDaily::Day))
                    .col(string(InteractionDaily::PatronType))
                    .col(string(InteractionDaily::Channel))
                    .col(big_integer(InteractionDaily::Interactions))
                    .col(big_integer(InteractionDaily::RatingSum))
                    .col(big_integer(InteractionDaily::RatingCount))
                    .primary_key(
                        Index::create()
                            .col(InteractionDaily::ServiceId)
                            .col(InteractionDaily::Day)
                            .col(InteractionDaily::PatronType)
                            .col(InteractionDaily::Channel),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ServicePatronDay::Table)
                    .col(uuid(ServicePatronDay::ServiceId))
                    .col(date(ServicePatronDay::Day))
                    .col(uuid(ServicePatronDay::PatronId))
                    .col(string(ServicePatronDay::Channel))
                    .col(string(ServicePatronDay::PatronType))
                    .primary_key(
                        Index::create()
                            .col(ServicePatronDay::ServiceId)
                            .col(ServicePatronDay::Day)
                            .col(ServicePatronDay::PatronId)
                            .col(ServicePatronDay::Channel)
                            .col(ServicePatronDay::PatronType),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ServicePatronFirst::Table)
                    .col(uuid(ServicePatronFirst::ServiceId))
                    .col(uuid(ServicePatronFirst::PatronId))
                    .col(date(ServicePatronFirst::FirstDay))
                    .primary_key(Index::create().col(ServicePatronFirst::ServiceId).col(ServicePatronFirst::PatronId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_service_patron_first_service_day",
                ServicePatronFirst::Table,
                [ServicePatronFirst::ServiceId, ServicePatronFirst::FirstDay],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ServicePatronFirst::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(ServicePatronDay::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(InteractionDaily::Table).to_owned()).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum InteractionDaily {
    Table,
    ServiceId,
    Day,
    PatronType,
    Channel,
    Interactions,
    RatingSum,
    RatingCount,
}

#[derive(DeriveIden)]
enum ServicePatronDay {
    Table,
    ServiceId,
    Day,
    PatronId,
    Channel,
    PatronType,
}

#[derive(DeriveIden)]
enum ServicePatronFirst {
    Table,
    ServiceId,
    PatronId,
    FirstDay,
}
