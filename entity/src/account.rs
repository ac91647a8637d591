//! `account`: a staff, admin or funder login (email + argon2id password).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// What an account may do. Patrons and partner clients are not accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum AccountRole {
    #[sea_orm(string_value = "ADMIN")]
    #[serde(rename = "ADMIN")]
    Admin,
    #[sea_orm(string_value = "STAFF")]
    #[serde(rename = "STAFF")]
    Staff,
    /// Linked to one funder; reads that funder's data only.
    #[sea_orm(string_value = "FUNDER")]
    #[serde(rename = "FUNDER")]
    Funder,
}

impl AccountRole {
    pub const ALL: &'static [AccountRole] = &[AccountRole::Admin, AccountRole::Staff, AccountRole::Funder];

    pub fn as_str(&self) -> &'static str {
        match self {
            AccountRole::Admin => "ADMIN",
            AccountRole::Staff => "STAFF",
            AccountRole::Funder => "FUNDER",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "account")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Lower-cased; unique.
    #[sea_orm(unique)]
    pub email: String,
    /// argon2id PHC string. Never serialized.
    #[serde(skip_serializing, default)]
    pub password_hash: String,
    pub role: AccountRole,
    /// The funder a FUNDER account belongs to.
    pub funder_id: Option<Uuid>,
    pub display_name: String,
    /// Set while the account may not log in.
    pub disabled_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::funder::Entity",
        from = "Column::FunderId",
        to = "super::funder::Column::Id",
        on_delete = "Restrict"
    )]
    Funder,
    #[sea_orm(has_many = "super::refresh_token::Entity")]
    RefreshToken,
}

impl Related<super::funder::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Funder.def()
    }
}

impl Related<super::refresh_token::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RefreshToken.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
