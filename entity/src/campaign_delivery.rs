//! `campaign_delivery`: the campaign's message for one consenting treatment member.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::CampaignChannel;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "campaign_delivery")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub campaign_id: Uuid,
    /// `None` once the patron is erased.
    pub patron_id: Option<Uuid>,
    pub channel: CampaignChannel,
    pub created_at: DateTimeUtc,
    /// When it reached the patron: at launch for in-app messages, when a partner tool reports
    /// it sent for the other channels.
    pub delivered_at: Option<DateTimeUtc>,
    /// `delivered_at` plus the campaign's conversion window.
    pub conversion_ends_at: Option<DateTimeUtc>,
    pub opened_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::campaign::Entity",
        from = "Column::CampaignId",
        to = "super::campaign::Column::Id",
        on_delete = "Cascade"
    )]
    Campaign,
    #[sea_orm(
        belongs_to = "super::patron::Entity",
        from = "Column::PatronId",
        to = "super::patron::Column::Id",
        on_delete = "SetNull"
    )]
    Patron,
}

impl Related<super::campaign::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Campaign.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
