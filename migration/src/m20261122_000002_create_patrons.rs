//! `patron`, its tags (`patron_tag`) and its consent history (`consent_event`).

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
                    .table(Patron::Table)
                    .col(pk_uuid(Patron::Id))
                    // NULL once the patron is erased; unique otherwise.
                    .col(string_null(Patron::CardNumber))
                    .col(string_null(Patron::Name))
                    .col(string_null(Patron::Email))
                    .col(string_null(Patron::Phone))
                    .col(string(Patron::PatronType))
                    .col(string_null(Patron::HomeBranch))
                    .col(string(Patron::Status))
                    // argon2id PHC string.
                    .col(string_null(Patron::PinHash))
                    .col(timestamp_with_time_zone_null(Patron::ErasedAt))
                    .col(timestamp_with_time_zone(Patron::CreatedAt))
                    .col(timestamp_with_time_zone(Patron::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // NULLs are distinct in unique indexes on both backends, so many erased patrons
        // (card_number NULL) can coexist.
        manager.create_index(unique_index("uq_patron_card_number", Patron::Table, [Patron::CardNumber])).await?;
        manager.create_index(index("idx_patron_name_id", Patron::Table, [Patron::Name, Patron::Id])).await?;
        manager.create_index(index("idx_patron_created_at_id", Patron::Table, [Patron::CreatedAt, Patron::Id])).await?;
        manager.create_index(index("idx_patron_patron_type", Patron::Table, [Patron::PatronType])).await?;
        manager.create_index(index("idx_patron_status", Patron::Table, [Patron::Status])).await?;
        manager.create_index(index("idx_patron_home_branch", Patron::Table, [Patron::HomeBranch])).await?;
        manager.create_index(index("idx_patron_email", Patron::Table, [Patron::Email])).await?;

        manager
            .create_table(
                Table::create()
                    .table(PatronTag::Table)
                    .col(uuid(PatronTag::PatronId))
                    .col(string(PatronTag::Tag))
                    // The primary key's leading column also serves as the index for the
                    // foreign key on `patron_id`.
                    .primary_key(Index::create().name("pk_patron_tag").col(PatronTag::PatronId).col(PatronTag::Tag))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_patron_tag_patron")
                            .from(PatronTag::Table, PatronTag::PatronId)
                            .to(Patron::Table, Patron::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_patron_tag_tag_patron_id",
                PatronTag::Table,
                [PatronTag::Tag, PatronTag::PatronId],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConsentEvent::Table)
                    .col(pk_uuid(ConsentEvent::Id))
                    .col(uuid(ConsentEvent::PatronId))
                    // PERSONALISATION, MARKETING_EMAIL, MARKETING_SMS, MARKETING_PUSH,
                    // MARKETING_IN_APP.
                    .col(string(ConsentEvent::Purpose))
                    .col(boolean(ConsentEvent::Granted))
                    // APP, STAFF, IMPORT.
                    .col(string(ConsentEvent::Source))
                    // Version of the consent wording the patron saw, if known.
                    .col(string_null(ConsentEvent::TextVersion))
                    .col(timestamp_with_time_zone(ConsentEvent::RecordedAt))
                    .col(timestamp_with_time_zone(ConsentEvent::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_consent_event_patron")
                            .from(ConsentEvent::Table, ConsentEvent::PatronId)
                            .to(Patron::Table, Patron::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Also the index for the foreign key on `patron_id` (leading column).
        manager
            .create_index(index(
                "idx_consent_event_patron_purpose_recorded",
                ConsentEvent::Table,
                [ConsentEvent::PatronId, ConsentEvent::Purpose, ConsentEvent::RecordedAt],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children first, so the foreign keys never point at a missing table.
        manager.drop_table(Table::drop().table(ConsentEvent::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(PatronTag::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Patron::Table).to_owned()).await
    }

    fn use_transaction(&self) -> Option<bool> {
        // SQLite DDL is transactional too: a failed migration leaves nothing half done.
        Some(true)
    }
}

#[derive(DeriveIden)]
#[expect(clippy::enum_variant_names, reason = "the column is `patron_type`, named like the table")]
enum Patron {
    Table,
    Id,
    CardNumber,
    Name,
    Email,
    Phone,
    PatronType,
    HomeBranch,
    Status,
    PinHash,
    ErasedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PatronTag {
    Table,
    PatronId,
    Tag,
}

#[derive(DeriveIden)]
enum ConsentEvent {
    Table,
    Id,
    PatronId,
    Purpose,
    Granted,
    Source,
    TextVersion,
    RecordedAt,
    CreatedAt,
}
