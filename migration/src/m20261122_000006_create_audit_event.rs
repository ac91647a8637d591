//! `audit_event`: who read or changed which patron's data, when, in which request.
//!
//! `target_patron_id` is deliberately not a foreign key: the audit trail outlives the erasure
//! of a patron (it holds their id, never their personal data).

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvent::Table)
                    .col(pk_uuid(AuditEvent::Id))
                    .col(timestamp_with_time_zone(AuditEvent::OccurredAt))
                    // The viewer's subject: account id, partner client id, patron id, or
                    // `system:<job>`.
                    .col(string(AuditEvent::Actor))
                    // ADMIN, STAFF, PATRON, FUNDER, PARTNER or SYSTEM.
                    .col(string(AuditEvent::ActorRole))
                    // READ_PATRON, LIST_PATRONS, READ_INTERACTIONS, UPDATE_CONSENT, ...
                    .col(string(AuditEvent::Action))
                    .col(uuid_null(AuditEvent::TargetPatronId))
                    // Free text without personal data (field names, counts).
                    .col(text_null(AuditEvent::Detail))
                    .col(uuid_null(AuditEvent::RequestId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_audit_event_occurred_at_id",
                AuditEvent::Table,
                [AuditEvent::OccurredAt, AuditEvent::Id],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_audit_event_target_occurred_at",
                AuditEvent::Table,
                [AuditEvent::TargetPatronId, AuditEvent::OccurredAt],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_audit_event_actor_occurred_at",
                AuditEvent::Table,
                [AuditEvent::Actor, AuditEvent::OccurredAt],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_audit_event_action_occurred_at",
                AuditEvent::Table,
                [AuditEvent::Action, AuditEvent::OccurredAt],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AuditEvent::Table).to_owned()).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum AuditEvent {
    Table,
    Id,
    OccurredAt,
    Actor,
    ActorRole,
    Action,
    TargetPatronId,
    Detail,
    RequestId,
}
