//! Privacy in GraphQL: `exportMyData` / `exportPatronData` (one JSON document) and
//! `erasePatron` / `eraseMe`. The rules live in `domain::privacy`.

use async_graphql::{Context, ID, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::audit_event::AuditAction;
use serde_json::Value;
use uuid::Uuid;

use super::{
    audit::{record_write, request_id},
    context::ContextExt,
    ids::{NodeKind, parse_global_id, to_global_id},
};
use crate::{
    auth::Capability,
    domain::{
        patrons,
        privacy::{self as domain, Erasure},
    },
    error::AppError,
};

/// Record the export, wait until the trail is stored (so the document lists this export and
/// every earlier access), then build the document.
async fn export(ctx: &Context<'_>, patron_id: Uuid, staff: bool) -> Result<Json<Value>> {
    let state = ctx.state()?;
    let detail = if staff { "staff export (with staff notes)" } else { "export by the patron" };
    record_write(ctx, AuditAction::ExportPatron, Some(patron_id), Some(detail.into())).await?;
    state.audit.flush().await;
    Ok(Json(domain::export(&state.db, patron_id, staff).await?))
}

#[derive(Default)]
pub struct PrivacyQuery;

#[Object]
impl PrivacyQuery {
    /// Everything held about the signed-in patron, as one JSON document: profile, tags,
    /// current consents and their history, every interaction, and the audit events about them
    /// (who read or changed their data). Patron tokens only. Ids in the document are UUIDs.
    async fn export_my_data(&self, ctx: &Context<'_>) -> Result<Json<Value>> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        let patron_id = domain::own_patron_id(viewer, "export a patron's own data (use `exportPatronData`)")?;
        let patron = patrons::get(&state.db, viewer, patron_id)
            .await
            .map_err(|_| AppError::Unauthenticated("this patron no longer exists".into()))?;
        domain::check_patron_alive(&patron)?;
        export(ctx, patron_id, false).await
    }

    /// Everything held about a patron, as one JSON document (staff and admins; with staff
    /// notes). The export is recorded in the audit trail.
    async fn export_patron_data(&self, ctx: &Context<'_>, id: ID) -> Result<Json<Value>> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        domain::check_staff_export(viewer)?;
        let patron_id = parse_global_id(&id, NodeKind::Patron, "id")?;
        patrons::get(&state.db, viewer, patron_id).await?;
        export(ctx, patron_id, viewer.can(Capability::ReadStaffNotes)).await
    }
}

/// What an erasure did.
#[derive(SimpleObject)]
pub struct ErasePatronPayload {
    pub patron_id: ID,
    /// True when this call erased the patron; false when they had already been erased (nothing
    /// changed).
    pub erased: bool,
    pub erased_at: DateTime<Utc>,
    /// Interactions kept for statistics without the patron, comment or staff notes.
    pub interactions_anonymised: u64,
    pub consent_events_deleted: u64,
    pub tags_deleted: u64,
}

impl From<Erasure> for ErasePatronPayload {
    fn from(e: Erasure) -> Self {
        Self {
            patron_id: to_global_id(NodeKind::Patron, e.patron_id),
            erased: e.erased_now,
            erased_at: e.erased_at,
            interactions_anonymised: e.interactions_anonymised,
            consent_events_deleted: e.consent_events_deleted,
            tags_deleted: e.tags_deleted,
        }
    }
}

#[derive(Default)]
pub struct PrivacyMutation;

#[Object]
impl PrivacyMutation {
    /// Erase a patron (admins; a patron may erase themself): personal data removed, history
    /// kept anonymised for statistics, logins disabled. Idempotent.
    async fn erase_patron(&self, ctx: &Context<'_>, id: ID) -> Result<ErasePatronPayload> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        // Refuse those who may erase no one before looking at the id.
        if !viewer.can(Capability::Administer) && viewer.patron_id().is_none() {
            return Err(viewer.denied("erase patrons").into());
        }
        let patron_id = parse_global_id(&id, NodeKind::Patron, "id")?;
        Ok(domain::erase(state, viewer, patron_id, Some(request_id(ctx))).await?.into())
    }

    /// The signed-in patron erases their own data; the token used stops working.
    async fn erase_me(&self, ctx: &Context<'_>) -> Result<ErasePatronPayload> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        let patron_id = domain::own_patron_id(viewer, "use `eraseMe` (patron tokens only; see `erasePatron`)")?;
        Ok(domain::erase(state, viewer, patron_id, Some(request_id(ctx))).await?.into())
    }
}
