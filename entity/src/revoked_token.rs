//! `revoked_token`: access-token revocations that survive restarts (the cache sits in front).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// What a revocation matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum RevocationKind {
    /// One access token, by its `jti`.
    #[sea_orm(string_value = "ACCESS")]
    #[serde(rename = "ACCESS")]
    Access,
    /// Every access token carrying this session id (`sid`).
    #[sea_orm(string_value = "SESSION")]
    #[serde(rename = "SESSION")]
    Session,
}

impl RevocationKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            RevocationKind::Access => "ACCESS",
            RevocationKind::Session => "SESSION",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "revoked_token")]
pub struct Model {
    /// The `jti` (ACCESS) or the session id (SESSION).
    #[sea_orm(primary_key, auto_increment = false)]
    pub jti: String,
    pub kind: RevocationKind,
    /// Every token this could match has expired by then.
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
