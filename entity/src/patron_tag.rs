//! `patron_tag`: a free-form tag on a patron; primary key (patron_id, tag).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "patron_tag")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub patron_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tag: String,
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
