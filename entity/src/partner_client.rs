//! `partner_client`: an API client of a partner system, with a hashed secret and scopes.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "partner_client")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Public identifier (the OAuth `client_id`); unique.
    #[sea_orm(unique)]
    pub client_id: String,
    pub name: String,
    /// argon2id PHC string of the secret. Never serialized.
    #[serde(skip_serializing, default)]
    pub secret_hash: String,
    /// Space-separated scopes, e.g. `patrons:read interactions:write`.
    #[sea_orm(column_type = "Text")]
    pub scopes: String,
    /// Session id in this client's access tokens; replaced on rotation and revocation.
    pub token_family_id: Uuid,
    pub created_at: DateTimeUtc,
    pub rotated_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
