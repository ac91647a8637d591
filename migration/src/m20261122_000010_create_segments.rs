//! `segment`: a named rule over patrons. Members are computed from the rule, never stored
//! here; the rule is a JSON document (`domain::segments::SegmentRule`) so that new rule parts
//! need no migration.

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
                    .table(Segment::Table)
                    .col(pk_uuid(Segment::Id))
                    .col(string(Segment::Name))
                    .col(text(Segment::Rule))
                    .col(timestamp_with_time_zone(Segment::CreatedAt))
                    .col(timestamp_with_time_zone(Segment::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("idx_segment_created_at_id", Segment::Table, [Segment::CreatedAt, Segment::Id]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Segment::Table).to_owned()).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Segment {
    Table,
    Id,
    Name,
    Rule,
    CreatedAt,
    UpdatedAt,
}
