//! `campaign` (outreach promoting a service to a segment over a channel), its membership
//! snapshot taken at launch (`campaign_member`: treatment or holdout, consent at launch) and
//! its deliveries (`campaign_delivery`: one per consenting treatment member).
//!
//! Members and deliveries keep their row when the patron is erased, without the patron link
//! (`patron_id` NULL), so a campaign's counts do not change.

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
                    .table(Campaign::Table)
                    .col(pk_uuid(Campaign::Id))
                    .col(string(Campaign::Name))
                    .col(uuid(Campaign::SegmentId))
                    .col(uuid(Campaign::PromotedServiceId))
                    // EMAIL, SMS, PUSH, IN_APP.
                    .col(string(Campaign::Channel))
                    .col(text(Campaign::Message))
                    .col(integer(Campaign::HoldoutPercent))
                    .col(integer(Campaign::ConversionWindowDays))
                    // DRAFT, LAUNCHED.
                    .col(string(Campaign::Status))
                    .col(timestamp_with_time_zone_null(Campaign::LaunchedAt))
                    // `launched_at` plus the conversion window: the holdout's window ends here.
                    .col(timestamp_with_time_zone_null(Campaign::EndsAt))
                    // Counts fixed at launch.
                    .col(big_integer(Campaign::Targeted))
                    .col(big_integer(Campaign::Holdout))
                    .col(big_integer(Campaign::SkippedNoConsent))
                    .col(timestamp_with_time_zone(Campaign::CreatedAt))
                    .col(timestamp_with_time_zone(Campaign::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_campaign_segment")
                            .from(Campaign::Table, Campaign::SegmentId)
                            .to(Segment::Table, Segment::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_campaign_service")
                            .from(Campaign::Table, Campaign::PromotedServiceId)
                            .to(Service::Table, Service::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("idx_campaign_segment_id", Campaign::Table, [Campaign::SegmentId])).await?;
        manager
            .create_index(index("idx_campaign_promoted_service_id", Campaign::Table, [Campaign::PromotedServiceId]))
            .await?;
        manager
            .create_index(index("idx_campaign_created_at_id", Campaign::Table, [Campaign::CreatedAt, Campaign::Id]))
            .await?;
        manager
            .create_index(index("idx_campaign_status_ends_at", Campaign::Table, [Campaign::Status, Campaign::EndsAt]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CampaignMember::Table)
                    .col(pk_uuid(CampaignMember::Id))
                    .col(uuid(CampaignMember::CampaignId))
                    // NULL once the patron is erased.
                    .col(uuid_null(CampaignMember::PatronId))
                    .col(boolean(CampaignMember::InHoldout))
                    // Whether the patron consented to the campaign's channel at launch.
                    .col(boolean(CampaignMember::Consented))
                    .col(timestamp_with_time_zone(CampaignMember::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_campaign_member_campaign")
                            .from(CampaignMember::Table, CampaignMember::CampaignId)
                            .to(Campaign::Table, Campaign::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_campaign_member_patron")
                            .from(CampaignMember::Table, CampaignMember::PatronId)
                            .to(Patron::Table, Patron::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // Also the index for the foreign key on `campaign_id`; NULL patrons stay distinct.
        manager
            .create_index(unique_index(
                "uq_campaign_member_campaign_patron",
                CampaignMember::Table,
                [CampaignMember::CampaignId, CampaignMember::PatronId],
            ))
            .await?;
        manager
            .create_index(index("idx_campaign_member_patron_id", CampaignMember::Table, [CampaignMember::PatronId]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CampaignDelivery::Table)
                    .col(pk_uuid(CampaignDelivery::Id))
                    .col(uuid(CampaignDelivery::CampaignId))
                    // NULL once the patron is erased.
                    .col(uuid_null(CampaignDelivery::PatronId))
                    .col(string(CampaignDelivery::Channel))
                    .col(timestamp_with_time_zone(CampaignDelivery::CreatedAt))
                    .col(timestamp_with_time_zone_null(CampaignDelivery::DeliveredAt))
                    // `delivered_at` plus the campaign's conversion window.
                    .col(timestamp_with_time_zone_null(CampaignDelivery::ConversionEndsAt))
                    .col(timestamp_with_time_zone_null(CampaignDelivery::OpenedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_campaign_delivery_campaign")
                            .from(CampaignDelivery::Table, CampaignDelivery::CampaignId)
                            .to(Campaign::Table, Campaign::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_campaign_delivery_patron")
                            .from(CampaignDelivery::Table, CampaignDelivery::PatronId)
                            .to(Patron::Table, Patron::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique_index(
                "uq_campaign_delivery_campaign_patron",
                CampaignDelivery::Table,
                [CampaignDelivery::CampaignId, CampaignDelivery::PatronId],
            ))
            .await?;
        // The patron's inbox, newest first.
        manager
            .create_index(index(
                "idx_campaign_delivery_patron_created_id",
                CampaignDelivery::Table,
                [CampaignDelivery::PatronId, CampaignDelivery::CreatedAt, CampaignDelivery::Id],
            ))
            .await?;
        // What partner tools still have to send, per channel, oldest first.
        manager
            .create_index(index(
                "idx_campaign_delivery_pending",
                CampaignDelivery::Table,
                [CampaignDelivery::Channel, CampaignDelivery::DeliveredAt, CampaignDelivery::CreatedAt],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(CampaignDelivery::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(CampaignMember::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Campaign::Table).to_owned()).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Campaign {
    Table,
    Id,
    Name,
    SegmentId,
    PromotedServiceId,
    Channel,
    Message,
    HoldoutPercent,
    ConversionWindowDays,
    Status,
    LaunchedAt,
    EndsAt,
    Targeted,
    Holdout,
    SkippedNoConsent,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CampaignMember {
    Table,
    Id,
    CampaignId,
    PatronId,
    InHoldout,
    Consented,
    CreatedAt,
}

#[derive(DeriveIden)]
enum CampaignDelivery {
    Table,
    Id,
    CampaignId,
    PatronId,
    Channel,
    CreatedAt,
    DeliveredAt,
    ConversionEndsAt,
    OpenedAt,
}

#[derive(DeriveIden)]
enum Segment {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Service {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Patron {
    Table,
    Id,
}
