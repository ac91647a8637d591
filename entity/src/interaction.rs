//! `interaction`: one touchpoint between a patron and a service.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{Channel, InteractionKind, PatronType};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "interaction")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `None` once anonymised (retention policy, erasure of the patron).
    pub patron_id: Option<Uuid>,
    pub service_id: Uuid,
    /// The patron's type when the interaction was recorded, kept after anonymisation.
    pub patron_type: PatronType,
    pub kind: InteractionKind,
    pub channel: Channel,
    pub occurred_at: DateTimeUtc,
    pub branch: Option<String>,
    pub staff_member: Option<String>,
    /// Satisfaction, 1 to 5.
    pub rating: Option<i16>,
    #[sea_orm(column_type = "Text", nullable)]
    pub comment: Option<String>,
    /// Staff-only notes.
    #[sea_orm(column_type = "Text", nullable)]
    pub staff_notes: Option<String>,
    /// Origin system of a synced interaction; unique together with `external_id`.
    pub source: Option<String>,
    pub external_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::patron::Entity",
        from = "Column::PatronId",
        to = "super::patron::Column::Id",
        on_delete = "SetNull"
    )]
    Patron,
    #[sea_orm(
        belongs_to = "super::service::Entity",
        from = "Column::ServiceId",
        to = "super::service::Column::Id",
        on_delete = "Restrict"
    )]
    Service,
}

impl Related<super::patron::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Patron.def()
    }
}

impl Related<super::service::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Service.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
