//! Privacy: export of everything held about a patron, erasure of a patron, and the retention
//! policy for old interactions.
//!
//! - **Export** (the patron for themself, staff and admins for anyone): one JSON document with
//!   the profile (never the PIN hash), tags, current consents and their full history, every
//!   interaction (staff notes only in a staff export) and the audit events about the patron.
//!   Also the campaigns the patron was a member of (group, delivery, opened).
//! - **Erasure** (admins, or the patron themself), in one transaction: name, email, phone, card
//!   number and PIN hash removed, status `ERASED`; tags and consent events deleted (they are
//!   personal data; the audit detail keeps their count); interactions keep their service, kind,
//!   channel, time, rating and patron-type snapshot but lose the patron link, the comment and
//!   the staff notes, so every count stays; every session revoked and logins disabled. Erasing
//!   an erased patron succeeds and changes nothing.
//!   Campaign memberships and deliveries lose the patron link (campaign counts stay).
//! - **Retention**: with `RETENTION_DAYS` set, interactions older than that are anonymised the
//!   same way (patron link, comment and notes removed), in bounded batches, hourly and by
//!   `rapport purge`.

use std::collections::HashMap;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use entity::{
    audit_event::{self, AuditAction},
    consent_event,
    enums::PatronStatus,
    interaction, patron, patron_tag,
    revoked_token::RevocationKind,
    service,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionOptions, TransactionTrait,
    sea_query::{Expr, Query},
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    audit::{self, RequestId},
    consent, patrons, sessions,
};
use crate::{
    auth::{Capability, Viewer, revocation},
    error::{AppError, AppResult},
    state::AppState,
};

/// Interactions anonymised per statement by the retention purge.
pub const PURGE_BATCH: u64 = 5_000;
/// Version of the export document's layout.
pub const EXPORT_FORMAT: &str = "rapport.patron-export/1";

// ---------------------------------------------------------------------------------------------
// Access rules

/// `exportPatronData`: staff and admins (partners and patrons are refused; a patron uses
/// `exportMyData`).
pub fn check_staff_export(viewer: &Viewer) -> AppResult<()> {
    if viewer.is_staff() { Ok(()) } else { Err(viewer.denied("export a patron's data")) }
}

/// `exportMyData`, `eraseMe`: the signed-in patron.
pub fn own_patron_id(viewer: &Viewer, what: &str) -> AppResult<Uuid> {
    viewer.require_authenticated()?;
    viewer.patron_id().ok_or_else(|| viewer.denied(what))
}

/// Erasure: admins, or the patron themself.
pub fn check_erase(viewer: &Viewer, patron_id: Uuid) -> AppResult<()> {
    if viewer.can(Capability::Administer) || viewer.patron_id() == Some(patron_id) {
        return Ok(());
    }
    if viewer.patron_id().is_some() {
        return Err(viewer.denied("erase another patron"));
    }
    Err(viewer.denied("erase patrons"))
}

/// A patron token whose record is gone or erased no longer stands for anyone.
pub fn check_patron_alive(model: &patron::Model) -> AppResult<()> {
    if model.status == PatronStatus::Erased {
        Err(AppError::Unauthenticated("this patron has been erased".into()))
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Export

/// Everything held about a patron as one JSON document. `include_staff_notes` for staff
/// exports only. The caller has checked access and recorded (and flushed) the export in the
/// audit trail, so the document lists its own export.
pub async fn export(db: &impl ConnectionTrait, patron_id: Uuid, include_staff_notes: bool) -> AppResult<Value> {
    let patron = patron::Entity::find_by_id(patron_id).one(db).await?.ok_or_else(|| AppError::not_found("patron"))?;
    let tags = patrons::tags_for(db, &[patron_id]).await?.remove(&patron_id).unwrap_or_default();
    let current = consent::current_consents(db, &[patron_id]).await?.remove(&patron_id).unwrap_or_default();
    let history = consent::full_history(db, patron_id).await?;
    let interactions = interaction::Entity::find()
        .filter(interaction::Column::PatronId.eq(patron_id))
        .order_by_asc(interaction::Column::OccurredAt)
        .order_by_asc(interaction::Column::Id)
        .all(db)
        .await?;
    let mut service_ids: Vec<Uuid> = interactions.iter().map(|i| i.service_id).collect();
    service_ids.sort_unstable();
    service_ids.dedup();
    let services: HashMap<Uuid, service::Model> = if service_ids.is_empty() {
        HashMap::new()
    } else {
        service::Entity::find()
            .filter(service::Column::Id.is_in(service_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect()
    };
    let audit_events = audit::about_patron(db, patron_id).await?;
    let campaigns = super::campaigns::export_for(db, patron_id).await?;
    Ok(json!({
        "format": EXPORT_FORMAT,
        "exportedAt": Utc::now(),
        "patron": {
            "id": patron.id,
            "cardNumber": patron.card_number,
            "name": patron.name,
            "email": patron.email,
            "phone": patron.phone,
            "patronType": patron.patron_type.as_str(),
            "homeBranch": patron.home_branch,
            "status": patron.status.as_str(),
            "hasPin": patron.pin_hash.is_some(),
            "erasedAt": patron.erased_at,
            "createdAt": patron.created_at,
            "updatedAt": patron.updated_at,
        },
        "tags": tags,
        "consents": {
            "current": current.iter().map(consent_json).collect::<Vec<_>>(),
            "history": history.iter().map(consent_json).collect::<Vec<_>>(),
        },
        "interactions": interactions
            .iter()
            .map(|i| interaction_json(i, services.get(&i.service_id), include_staff_notes))
            .collect::<Vec<_>>(),
        "auditEvents": audit_events.iter().map(audit_json).collect::<Vec<_>>(),
        "campaigns": campaigns,
    }))
}

fn consent_json(event: &consent_event::Model) -> Value {
    json!({
        "purpose": event.purpose.as_str(),
        "granted": event.granted,
        "source": event.source.as_str(),
        "textVersion": event.text_version,
        "recordedAt": event.recorded_at,
    })
}

fn interaction_json(model: &interaction::Model, service: Option<&service::Model>, staff_notes: bool) -> Value {
    let mut value = json!({
        "id": model.id,
        "service": service.map(|s| json!({ "id": s.id, "code": s.code, "name": s.name })),
        "patronType": model.patron_type.as_str(),
        "kind": model.kind.as_str(),
        "channel": model.channel.as_str(),
        "occurredAt": model.occurred_at,
        "branch": model.branch,
        "staffMember": model.staff_member,
        "rating": model.rating,
        "comment": model.comment,
        "source": model.source,
        "externalId": model.external_id,
        "createdAt": model.created_at,
    });
    if staff_notes && let Some(object) = value.as_object_mut() {
        object.insert("staffNotes".into(), json!(model.staff_notes));
    }
    value
}

fn audit_json(event: &audit_event::Model) -> Value {
    json!({
        "id": event.id,
        "occurredAt": event.occurred_at,
        "actor": event.actor,
        "actorRole": event.actor_role.as_str(),
        "action": event.action.as_str(),
        "detail": event.detail,
        "requestId": event.request_id,
    })
}

// ---------------------------------------------------------------------------------------------
// Erasure

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    pub patron_id: Uuid,
    /// False when the patron had already been erased (nothing changed).
    pub erased_now: bool,
    pub erased_at: DateTime<Utc>,
    pub interactions_anonymised: u64,
    pub consent_events_deleted: u64,
    pub tags_deleted: u64,
}

/// Erase a patron (see the module documentation). Idempotent. The erasure and its audit event
/// commit together.
#[tracing::instrument(skip(state, viewer, request_id))]
pub async fn erase(
    state: &AppState,
    viewer: &Viewer,
    patron_id: Uuid,
    request_id: Option<RequestId>,
) -> AppResult<Erasure> {
    check_erase(viewer, patron_id)?;
    // IMMEDIATE on SQLite takes the write lock up front (no upgrade failure against a
    // concurrent writer); on PostgreSQL the patron row is locked below.
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let txn = state.db.begin_with_options(options).await?;
    let existing = patron::Entity::find_by_id(patron_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("patron"))?;

    if existing.status == PatronStatus::Erased {
        let event = audit::event(
            viewer,
            AuditAction::ErasePatron,
            Some(patron_id),
            Some("already erased; nothing changed".into()),
            request_id,
        );
        audit::insert_now(&txn, &[event]).await?;
        txn.commit().await?;
        return Ok(Erasure {
            patron_id,
            erased_now: false,
            erased_at: existing.erased_at.unwrap_or(existing.updated_at),
            interactions_anonymised: 0,
            consent_events_deleted: 0,
            tags_deleted: 0,
        });
    }

    let now = Utc::now().trunc_subsecs(6);
    let mut model: patron::ActiveModel = existing.into();
    model.card_number = Set(None);
    model.name = Set(None);
    model.email = Set(None);
    model.phone = Set(None);
    model.pin_hash = Set(None);
    model.status = Set(PatronStatus::Erased);
    model.erased_at = Set(Some(now));
    model.updated_at = Set(now);
    model.update(&txn).await?;

    let tags_deleted =
        patron_tag::Entity::delete_many().filter(patron_tag::Column::PatronId.eq(patron_id)).exec(&txn).await?;
    let consent_events_deleted = consent::delete_all(&txn, patron_id).await?;
    // NPS answers keep their score (the NPS stays the same) but lose their free-text comment.
    entity::nps_response::Entity::update_many()
        .col_expr(entity::nps_response::Column::Comment, Expr::value(Option::<String>::None))
        .filter(entity::nps_response::Column::PatronId.eq(patron_id))
        .exec(&txn)
        .await?;
    let interactions_anonymised =
        anonymise_interactions(&txn, Condition::all().add(interaction::Column::PatronId.eq(patron_id)), now).await?;
    // Campaign memberships and deliveries keep their counts but no longer name the patron.
    super::campaigns::anonymise_patron(&txn, patron_id).await?;
    // Logins: the PIN is gone; every session (refresh-token family and its access tokens) ends.
    sessions::disable_patron_login(&txn, state, patron_id).await?;
    // A patron erasing themself with a token outside any session: that token ends too.
    if viewer.patron_id() == Some(patron_id)
        && let (Some(jti), Some(exp)) = (viewer.token_id.as_deref(), viewer.token_expires_at)
    {
        let expires_at = revocation::access_expiry(exp, state.jwt.leeway())?;
        revocation::revoke(&txn, &state.cache, RevocationKind::Access, jti, expires_at).await?;
    }
    let detail = format!(
        "interactions anonymised: {interactions_anonymised}; consent events deleted: {consent_events_deleted}; \
         tags deleted: {}; logins disabled",
        tags_deleted.rows_affected
    );
    let event = audit::event(viewer, AuditAction::ErasePatron, Some(patron_id), Some(detail), request_id);
    audit::insert_now(&txn, &[event]).await?;
    txn.commit().await?;
    tracing::info!(
        patron = %patron_id,
        by = %viewer.subject(),
        interactions_anonymised,
        consent_events_deleted,
        "patron erased"
    );
    Ok(Erasure {
        patron_id,
        erased_now: true,
        erased_at: now,
        interactions_anonymised,
        consent_events_deleted,
        tags_deleted: tags_deleted.rows_affected,
    })
}

/// Remove the patron link, the comment and the staff notes of the interactions matching
/// `which`; everything counted by reports (service, kind, channel, time, rating, patron type)
/// stays. Returns how many rows changed.
async fn anonymise_interactions(db: &impl ConnectionTrait, which: Condition, now: DateTime<Utc>) -> AppResult<u64> {
    let result = interaction::Entity::update_many()
        .col_expr(interaction::Column::PatronId, Expr::value(Option::<Uuid>::None))
        .col_expr(interaction::Column::Comment, Expr::value(Option::<String>::None))
        .col_expr(interaction::Column::StaffNotes, Expr::value(Option::<String>::None))
        .col_expr(interaction::Column::UpdatedAt, Expr::value(now))
        .filter(which)
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

// ---------------------------------------------------------------------------------------------
// Retention

/// Whether an interaction still carries anything the retention policy removes.
fn identifiable() -> Condition {
    Condition::any()
        .add(interaction::Column::PatronId.is_not_null())
        .add(interaction::Column::Comment.is_not_null())
        .add(interaction::Column::StaffNotes.is_not_null())
}

/// Anonymise every interaction that occurred before `cutoff`, [`PURGE_BATCH`] rows per
/// statement (each its own short transaction), until none is left. Returns how many rows
/// changed. Records a `RETENTION_PURGE` audit event when any did.
pub async fn purge_before(db: &DatabaseConnection, cutoff: DateTime<Utc>, actor: &str) -> AppResult<u64> {
    let mut total = 0u64;
    loop {
        let now = Utc::now().trunc_subsecs(6);
        let batch = Query::select()
            .column(interaction::Column::Id)
            .from(interaction::Entity)
            .cond_where(Condition::all().add(interaction::Column::OccurredAt.lt(cutoff)).add(identifiable()))
            .limit(PURGE_BATCH)
            .to_owned();
        let changed =
            anonymise_interactions(db, Condition::all().add(interaction::Column::Id.in_subquery(batch)), now).await?;
        total += changed;
        if changed > 0 {
            tracing::info!(batch = changed, total, %cutoff, "retention: interactions anonymised");
        }
        if changed < PURGE_BATCH {
            break;
        }
    }
    if total > 0 {
        let detail = format!("interactions anonymised: {total}; occurred before {}", cutoff.to_rfc3339());
        audit::insert_now(db, &[audit::system_event(actor, AuditAction::RetentionPurge, detail)]).await?;
    }
    Ok(total)
}

/// Anonymise interactions older than `days` days (the `RETENTION_DAYS` policy).
pub async fn purge_older_than(db: &DatabaseConnection, days: u32, actor: &str) -> AppResult<u64> {
    let cutoff = Utc::now() - Duration::days(i64::from(days));
    let total = purge_before(db, cutoff, actor).await?;
    tracing::info!(days, anonymised = total, "retention purge finished");
    Ok(total)
}

/// What `rapport purge` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    /// `None` when no retention period is configured (interactions are kept).
    pub retention_days: Option<u32>,
    pub interactions_anonymised: u64,
    pub refresh_tokens_deleted: u64,
}

impl std::fmt::Display for PurgeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.retention_days {
            Some(days) => {
                write!(f, "interactions older than {days} days anonymised: {}; ", self.interactions_anonymised)?
            }
            None => write!(f, "RETENTION_DAYS is not set: interactions kept; ")?,
        }
        write!(f, "expired refresh tokens deleted: {}", self.refresh_tokens_deleted)
    }
}

/// `rapport purge`: the retention policy now (when a period is given), and expired refresh
/// tokens.
pub async fn purge_command(db: &DatabaseConnection, retention_days: Option<u32>) -> AppResult<PurgeReport> {
    if retention_days == Some(0) {
        return Err(AppError::bad_field("days", "give a positive number of days"));
    }
    let interactions_anonymised = match retention_days {
        Some(days) => purge_older_than(db, days, "purge-command").await?,
        None => 0,
    };
    let refresh_tokens_deleted = sessions::purge_expired(db).await?;
    Ok(PurgeReport { retention_days, interactions_anonymised, refresh_tokens_deleted })
}

/// How often the scheduled retention purge runs.
pub const RETENTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3_600);

/// Run the retention purge now and then every hour, until the process ends. Every instance may
/// run it: the batches are idempotent.
pub fn spawn_retention_job(db: DatabaseConnection, days: u32) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(RETENTION_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticker.tick().await;
            if let Err(err) = purge_older_than(&db, days, "retention").await {
                match err {
                    AppError::Internal(cause) => tracing::error!(error = ?cause, "retention purge failed"),
                    other => tracing::error!(error = %other, "retention purge failed"),
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Principal, Scope};

    #[test]
    fn admins_and_the_patron_themself_may_erase() {
        let me = Uuid::now_v7();
        let other = Uuid::now_v7();
        let patron = Viewer::new(Principal::Patron { patron_id: me });
        assert!(check_erase(&patron, me).is_ok());
        assert!(matches!(check_erase(&patron, other), Err(AppError::Forbidden(_))));
        assert!(check_erase(&Viewer::new(Principal::Admin { account_id: "a".into() }), other).is_ok());
        assert!(matches!(
            check_erase(&Viewer::new(Principal::Staff { account_id: "s".into() }), other),
            Err(AppError::Forbidden(_))
        ));
        let partner = Viewer::new(Principal::Partner { client_id: "p".into(), scopes: Scope::ALL.into() });
        assert!(matches!(check_erase(&partner, other), Err(AppError::Forbidden(_))));
        assert!(matches!(check_erase(&Viewer::anonymous(), other), Err(AppError::Unauthenticated(_))));
    }

    #[test]
    fn only_staff_and_admins_export_other_patrons() {
        assert!(check_staff_export(&Viewer::new(Principal::Staff { account_id: "s".into() })).is_ok());
        let partner = Viewer::new(Principal::Partner { client_id: "p".into(), scopes: Scope::ALL.into() });
        assert!(matches!(check_staff_export(&partner), Err(AppError::Forbidden(_))));
        let patron = Viewer::new(Principal::Patron { patron_id: Uuid::now_v7() });
        assert!(matches!(check_staff_export(&patron), Err(AppError::Forbidden(_))));
        assert!(own_patron_id(&patron, "x").is_ok());
        assert!(matches!(own_patron_id(&Viewer::anonymous(), "x"), Err(AppError::Unauthenticated(_))));
    }

    #[test]
    fn staff_notes_only_in_staff_exports() {
        let model = interaction::Model {
            id: Uuid::now_v7(),
            patron_id: Some(Uuid::now_v7()),
            service_id: Uuid::now_v7(),
            patron_type: entity::enums::PatronType::Public,
            kind: entity::enums::InteractionKind::Visit,
            channel: entity::enums::Channel::InPerson,
            occurred_at: Utc::now(),
            branch: None,
            staff_member: None,
            rating: None,
            comment: Some("c".into()),
            staff_notes: Some("n".into()),
            source: None,
            external_id: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        assert_eq!(interaction_json(&model, None, true)["staffNotes"], "n");
        assert!(interaction_json(&model, None, false).get("staffNotes").is_none());
    }
}
