//! `funder`: a third party that pays for services.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::FunderKind;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "funder")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub kind: FunderKind,
    pub contact_email: Option<String>,
    pub website: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub notes: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::funding::Entity")]
    Funding,
}

impl Related<super::funding::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Funding.def()
    }
}

/// The services this funder funds, through `funding`.
impl Related<super::service::Entity> for Entity {
    fn to() -> RelationDef {
        super::funding::Relation::Service.def()
    }

    fn via() -> Option<RelationDef> {
        Some(super::funding::Relation::Funder.def().rev())
    }
}

impl ActiveModelBehavior for ActiveModel {}
