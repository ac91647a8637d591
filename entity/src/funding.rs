//! `funding`: a grant linking a funder to a service with an amount and a period.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "funding")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub funder_id: Uuid,
    pub service_id: Uuid,
    /// Grant reference.
    pub name: Option<String>,
    /// Amount in integer minor units of `currency` (e.g. cents).
    pub amount_minor: i64,
    /// ISO 4217 code, e.g. `EUR`.
    #[sea_orm(column_type = "String(StringLen::N(3))")]
    pub currency: String,
    pub starts_on: Date,
    /// Last day of the grant period (inclusive).
    pub ends_on: Date,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::funder::Entity",
        from = "Column::FunderId",
        to = "super::funder::Column::Id",
        on_delete = "Cascade"
    )]
    Funder,
    #[sea_orm(
        belongs_to = "super::service::Entity",
        from = "Column::ServiceId",
        to = "super::service::Column::Id",
        on_delete = "Restrict"
    )]
    Service,
}

impl Related<super::funder::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Funder.def()
    }
}

impl Related<super::service::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Service.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
