//! `patron`: a person the library serves.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{PatronStatus, PatronType};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "patron")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Unique while set; `None` after erasure.
    #[sea_orm(unique)]
    pub card_number: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub patron_type: PatronType,
    pub home_branch: Option<String>,
    pub status: PatronStatus,
    /// argon2id PHC string of the PIN. Never serialized, so a model dumped to JSON (an
    /// export, a log line, a cache entry) cannot leak it.
    #[serde(skip_serializing, default)]
    pub pin_hash: Option<String>,
    pub erased_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::interaction::Entity")]
    Interaction,
    #[sea_orm(has_many = "super::patron_tag::Entity")]
    PatronTag,
    #[sea_orm(has_many = "super::consent_event::Entity")]
    ConsentEvent,
}

impl Related<super::interaction::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Interaction.def()
    }
}

impl Related<super::patron_tag::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PatronTag.def()
    }
}

impl Related<super::consent_event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ConsentEvent.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
