//! `nps_response`: a patron's answer to "how likely are you to recommend the library" (0 to 10).
//!
//! A patron answers at most once per 90 days (checked by the application against the latest
//! `answered_at`).

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
                    .table(NpsResponse::Table)
                    .col(pk_uuid(NpsResponse::Id))
                    .col(uuid(NpsResponse::PatronId))
                    .col(small_integer(NpsResponse::Score))
                    .col(text_null(NpsResponse::Comment))
                    .col(timestamp_with_time_zone(NpsResponse::AnsweredAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_nps_response_patron")
                            .from(NpsResponse::Table, NpsResponse::PatronId)
                            .to(Patron::Table, Patron::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_nps_response_patron_answered_at",
                NpsResponse::Table,
                [NpsResponse::PatronId, NpsResponse::AnsweredAt],
            ))
            .await?;
        manager
            .create_index(index("idx_nps_response_answered_at", NpsResponse::Table, [NpsResponse::AnsweredAt]))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(NpsResponse::Table).to_owned()).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum NpsResponse {
    Table,
    Id,
    PatronId,
    Score,
    Comment,
    AnsweredAt,
}

#[derive(DeriveIden)]
enum Patron {
    Table,
    Id,
}
