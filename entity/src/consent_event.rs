//! `consent_event`: one consent given or withdrawn. A patron's current consent for a
//! purpose is the latest event (by `recorded_at`) for that purpose; none means not given.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{ConsentPurpose, ConsentSource};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "consent_event")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub patron_id: Uuid,
    pub purpose: ConsentPurpose,
    /// `true` when given, `false` when withdrawn.
    pub granted: bool,
    pub source: ConsentSource,
    /// Version of the consent wording shown, if known.
    pub text_version: Option<String>,
    /// When the patron gave or withdrew the consent.
    pub recorded_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::patron::Entity",
        from = "Column::PatronId",
        to = "super::patron::Column::Id",
        on_delete = "Cascade"
    )]
    Patron,
}

impl Related<super::patron::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Patron.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
