//! `campaign`: outreach promoting a service to a segment over a channel, with a holdout.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{CampaignChannel, CampaignStatus};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "campaign")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub segment_id: Uuid,
    pub promoted_service_id: Uuid,
    pub channel: CampaignChannel,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    /// Share of the segment kept out of the campaign, 0 to 50.
    pub holdout_percent: i32,
    /// Days after delivery (after launch for the holdout) in which a use of the promoted
    /// service counts as a conversion.
    pub conversion_window_days: i32,
    pub status: CampaignStatus,
    pub launched_at: Option<DateTimeUtc>,
    /// `launched_at` plus the conversion window.
    pub ends_at: Option<DateTimeUtc>,
    /// Members in the treatment group (fixed at launch).
    pub targeted: i64,
    /// Members in the holdout group (fixed at launch).
    pub holdout: i64,
    /// Treatment members without consent to the channel at launch: no delivery.
    pub skipped_no_consent: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::segment::Entity",
        from = "Column::SegmentId",
        to = "super::segment::Column::Id",
        on_delete = "Restrict"
    )]
    Segment,
    #[sea_orm(
        belongs_to = "super::service::Entity",
        from = "Column::PromotedServiceId",
        to = "super::service::Column::Id",
        on_delete = "Restrict"
    )]
    Service,
    #[sea_orm(has_many = "super::campaign_member::Entity")]
    CampaignMember,
    #[sea_orm(has_many = "super::campaign_delivery::Entity")]
    CampaignDelivery,
}

impl Related<super::segment::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Segment.def()
    }
}

impl Related<super::campaign_member::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CampaignMember.def()
    }
}

impl Related<super::campaign_delivery::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CampaignDelivery.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
