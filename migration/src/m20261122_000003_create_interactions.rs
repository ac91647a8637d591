//! `interaction`: one touchpoint between a patron and a service.

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
                    .table(Interaction::Table)
                    .col(pk_uuid(Interaction::Id))
                    // NULL once anonymised (retention policy or erasure of the patron).
                    .col(uuid_null(Interaction::PatronId))
                    .col(uuid(Interaction::ServiceId))
                    // Snapshot of the patron's type, so anonymised history still counts
                    // by segment.
                    .col(string(Interaction::PatronType))
                    .col(string(Interaction::Kind))
                    .col(string(Interaction::Channel))
                    .col(timestamp_with_time_zone(Interaction::OccurredAt))
                    .col(string_null(Interaction::Branch))
                    .col(string_null(Interaction::StaffMember))
                    // Satisfaction 1..=5; checked by the application.
                    .col(small_integer_null(Interaction::Rating))
                    .col(text_null(Interaction::Comment))
                    .col(text_null(Interaction::StaffNotes))
                    // Origin system and its id, for idempotent sync.
                    .col(string_null(Interaction::Source))
                    .col(string_null(Interaction::ExternalId))
                    .col(timestamp_with_time_zone(Interaction::CreatedAt))
                    .col(timestamp_with_time_zone(Interaction::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_interaction_patron")
                            .from(Interaction::Table, Interaction::PatronId)
                            .to(Patron::Table, Patron::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_interaction_service")
                            .from(Interaction::Table, Interaction::ServiceId)
                            .to(Service::Table, Service::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;

        // NULLs are distinct, so rows without a source/external id never collide.
        manager
            .create_index(unique_index(
                "uq_interaction_source_external_id",
                Interaction::Table,
                [Interaction::Source, Interaction::ExternalId],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_interaction_occurred_at_id",
                Interaction::Table,
                [Interaction::OccurredAt, Interaction::Id],
            ))
            .await?;
        // Also the index for the foreign key on `patron_id`.
        manager
            .create_index(index(
                "idx_interaction_patron_occurred_at_id",
                Interaction::Table,
                [Interaction::PatronId, Interaction::OccurredAt, Interaction::Id],
            ))
            .await?;
        // Also the index for the foreign key on `service_id`.
        manager
            .create_index(index(
                "idx_interaction_service_occurred_at_id",
                Interaction::Table,
                [Interaction::ServiceId, Interaction::OccurredAt, Interaction::Id],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_interaction_branch_occurred_at",
                Interaction::Table,
                [Interaction::Branch, Interaction::OccurredAt],
            ))
            .await?;
        manager.create_index(index("idx_interaction_kind", Interaction::Table, [Interaction::Kind])).await?;
        manager.create_index(index("idx_interaction_channel", Interaction::Table, [Interaction::Channel])).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Interaction::Table).to_owned()).await
    }

    fn use_transaction(&self) -> Option<bool> {
        // SQLite DDL is transactional too: a failed migration leaves nothing half done.
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Interaction {
    Table,
    Id,
    PatronId,
    ServiceId,
    PatronType,
    Kind,
    Channel,
    OccurredAt,
    Branch,
    StaffMember,
    Rating,
    Comment,
    StaffNotes,
    Source,
    ExternalId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Patron {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Service {
    Table,
    Id,
}
