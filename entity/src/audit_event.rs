//! `audit_event`: who read or changed which patron's data, when, in which request. Holds ids
//! and counts, never personal data, so it outlives the erasure of the patron it names
//! (`target_patron_id` is not a foreign key).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum AuditAction {
    /// One patron record read (by id, `node`, or as a relation).
    #[sea_orm(string_value = "READ_PATRON")]
    #[serde(rename = "READ_PATRON")]
    ReadPatron,
    /// A patron record returned in a list page (one event per patron returned).
    #[sea_orm(string_value = "LIST_PATRONS")]
    #[serde(rename = "LIST_PATRONS")]
    ListPatrons,
    /// Interactions of the patron read (one event per patron whose rows were returned).
    #[sea_orm(string_value = "READ_INTERACTIONS")]
    #[serde(rename = "READ_INTERACTIONS")]
    ReadInteractions,
    #[sea_orm(string_value = "CREATE_PATRON")]
    #[serde(rename = "CREATE_PATRON")]
    CreatePatron,
    #[sea_orm(string_value = "UPDATE_PATRON")]
    #[serde(rename = "UPDATE_PATRON")]
    UpdatePatron,
    #[sea_orm(string_value = "UPDATE_CONSENT")]
    #[serde(rename = "UPDATE_CONSENT")]
    UpdateConsent,
    /// Interactions recorded for the patron.
    #[sea_orm(string_value = "RECORD_INTERACTION")]
    #[serde(rename = "RECORD_INTERACTION")]
    RecordInteraction,
    #[sea_orm(string_value = "ERASE_PATRON")]
    #[serde(rename = "ERASE_PATRON")]
    ErasePatron,
    #[sea_orm(string_value = "EXPORT_PATRON")]
    #[serde(rename = "EXPORT_PATRON")]
    ExportPatron,
    /// A patron's PIN set or reset by staff.
    #[sea_orm(string_value = "SET_PIN")]
    #[serde(rename = "SET_PIN")]
    SetPin,
    /// A patron changed their own PIN.
    #[sea_orm(string_value = "CHANGE_PIN")]
    #[serde(rename = "CHANGE_PIN")]
    ChangePin,
    /// The retention job anonymised old interactions (no target patron).
    #[sea_orm(string_value = "RETENTION_PURGE")]
    #[serde(rename = "RETENTION_PURGE")]
    RetentionPurge,
}

impl AuditAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            AuditAction::ReadPatron => "READ_PATRON",
            AuditAction::ListPatrons => "LIST_PATRONS",
            AuditAction::ReadInteractions => "READ_INTERACTIONS",
            AuditAction::CreatePatron => "CREATE_PATRON",
            AuditAction::UpdatePatron => "UPDATE_PATRON",
            AuditAction::UpdateConsent => "UPDATE_CONSENT",
            AuditAction::RecordInteraction => "RECORD_INTERACTION",
            AuditAction::ErasePatron => "ERASE_PATRON",
            AuditAction::ExportPatron => "EXPORT_PATRON",
            AuditAction::SetPin => "SET_PIN",
            AuditAction::ChangePin => "CHANGE_PIN",
            AuditAction::RetentionPurge => "RETENTION_PURGE",
        }
    }
}

/// The role the actor acted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum ActorRole {
    #[sea_orm(string_value = "ADMIN")]
    #[serde(rename = "ADMIN")]
    Admin,
    #[sea_orm(string_value = "STAFF")]
    #[serde(rename = "STAFF")]
    Staff,
    #[sea_orm(string_value = "PATRON")]
    #[serde(rename = "PATRON")]
    Patron,
    #[sea_orm(string_value = "FUNDER")]
    #[serde(rename = "FUNDER")]
    Funder,
    #[sea_orm(string_value = "PARTNER")]
    #[serde(rename = "PARTNER")]
    Partner,
    /// A scheduled job or a command of the operator (`rapport purge`).
    #[sea_orm(string_value = "SYSTEM")]
    #[serde(rename = "SYSTEM")]
    System,
}

impl ActorRole {
    pub fn as_str(&self) -> &'static str {
        match self {
            ActorRole::Admin => "ADMIN",
            ActorRole::Staff => "STAFF",
            ActorRole::Patron => "PATRON",
            ActorRole::Funder => "FUNDER",
            ActorRole::Partner => "PARTNER",
            ActorRole::System => "SYSTEM",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "audit_event")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub occurred_at: DateTimeUtc,
    /// The viewer's subject: account id, partner client id, patron id, or `system:<job>`.
    pub actor: String,
    pub actor_role: ActorRole,
    pub action: AuditAction,
    /// The patron whose data was read or changed; not a foreign key.
    pub target_patron_id: Option<Uuid>,
    /// Field names and counts; never personal data.
    #[sea_orm(column_type = "Text", nullable)]
    pub detail: Option<String>,
    /// The GraphQL request the event belongs to.
    pub request_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
