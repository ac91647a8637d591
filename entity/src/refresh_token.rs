//! `refresh_token`: one link in the rotation chain of a login session. Only the SHA-256 of the
//! opaque token is stored.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Whose session a refresh token continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum SubjectKind {
    /// A staff, admin or funder account (`account_id` set).
    #[sea_orm(string_value = "ACCOUNT")]
    #[serde(rename = "ACCOUNT")]
    Account,
    /// A patron logged in with card number and PIN (`patron_id` set).
    #[sea_orm(string_value = "PATRON")]
    #[serde(rename = "PATRON")]
    Patron,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "refresh_token")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// All rotations of one login; presenting a rotated token revokes the whole family.
    pub family_id: Uuid,
    /// Hex SHA-256 of the token. Never serialized.
    #[serde(skip_serializing, default)]
    #[sea_orm(unique)]
    pub token_hash: String,
    pub subject_kind: SubjectKind,
    pub account_id: Option<Uuid>,
    pub patron_id: Option<Uuid>,
    pub issued_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// When this token was exchanged for its successor.
    pub rotated_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    /// The successor issued when this one was rotated.
    pub replaced_by: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::account::Entity",
        from = "Column::AccountId",
        to = "super::account::Column::Id",
        on_delete = "Cascade"
    )]
    Account,
    #[sea_orm(
        belongs_to = "super::patron::Entity",
        from = "Column::PatronId",
        to = "super::patron::Column::Id",
        on_delete = "Cascade"
    )]
    Patron,
}

impl Related<super::account::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Account.def()
    }
}

impl Related<super::patron::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Patron.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
