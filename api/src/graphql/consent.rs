//! Consent in GraphQL: `updateMyConsents` (the patron, from the app), `updatePatronConsents`
//! (staff on the patron's behalf, or an import), and the batched `Patron.consentHistory`
//! connection. Reading and writing go through `domain::consent` only.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{Context, ID, InputObject, Object, Result, dataloader::Loader};
use chrono::{DateTime, Utc};
use entity::{audit_event::AuditAction, consent_event, enums as db};
use uuid::Uuid;

use super::{
    audit::record_write,
    connection::{RelayConnection, into_connection, wants_total_count},
    context::ContextExt,
    enums::{ConsentPurpose, ConsentSource},
    ids::{NodeKind, parse_global_id},
    loaders::AppLoader,
    patrons::{Consent, Patron, PatronConsentsKey, load_patron},
};
use crate::{
    domain::{
        consent::{self as domain, ConsentChange},
        pagination::{Cursor, Page, PageArgs, PageWindow, SortValue},
    },
    error::{AppError, AppResult},
};

// ---------------------------------------------------------------------------------------------
// History (nested connection, batched across patrons)

/// The page arguments of a nested history connection, hashable so patrons asking alike share
/// one windowed query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistoryWindow {
    limit: u64,
    backward: bool,
    from: Option<(DateTime<Utc>, Uuid)>,
}

impl HistoryWindow {
    fn new(window: &PageWindow) -> AppResult<Self> {
        Ok(Self { limit: window.limit, backward: window.backward, from: window.time_position()? })
    }

    fn window(&self) -> PageWindow {
        PageWindow {
            limit: self.limit,
            backward: self.backward,
            cursor: self.from.map(|(time, id)| Cursor::new(SortValue::Time(time), id)),
        }
    }
}

/// Loader key: one page of one patron's consent history.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsentHistoryPage {
    pub patron_id: Uuid,
    pub window: HistoryWindow,
}

impl Loader<ConsentHistoryPage> for AppLoader {
    type Value = Page<consent_event::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[ConsentHistoryPage]) -> Result<HashMap<ConsentHistoryPage, Self::Value>, Self::Error> {
        let mut groups: HashMap<&HistoryWindow, Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups.entry(&key.window).or_default().push(key.patron_id);
        }
        let mut out = HashMap::with_capacity(keys.len());
        for (window, patron_ids) in groups {
            for (patron_id, page) in domain::history_pages(&self.db, &patron_ids, &window.window()).await? {
                out.insert(ConsentHistoryPage { patron_id, window: window.clone() }, page);
            }
        }
        Ok(out)
    }
}

/// Loader key: how many consent events a patron has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsentHistoryCount(pub Uuid);

impl Loader<ConsentHistoryCount> for AppLoader {
    type Value = u64;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[ConsentHistoryCount],
    ) -> Result<HashMap<ConsentHistoryCount, Self::Value>, Self::Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let counts = domain::history_counts(&self.db, &ids).await?;
        Ok(counts.into_iter().map(|(id, n)| (ConsentHistoryCount(id), n)).collect())
    }
}

/// `Patron.consentHistory`: newest first, with the patron read rules.
pub async fn consent_history_of(
    ctx: &Context<'_>,
    patron_id: Uuid,
    args: PageArgs,
) -> Result<RelayConnection<Consent>> {
    let state = ctx.state()?;
    domain::check_read_history(ctx.viewer(), patron_id)?;
    let window = args.window(state.limits())?;
    let key = HistoryWindow::new(&window)?;
    let loader = ctx.loader()?;
    let page = if window.limit == 0 {
        Page::empty()
    } else {
        loader.load_one(ConsentHistoryPage { patron_id, window: key }).await?.unwrap_or_else(Page::empty)
    };
    let total = if wants_total_count(ctx) {
        Some(loader.load_one(ConsentHistoryCount(patron_id)).await?.unwrap_or_default())
    } else {
        None
    };
    Ok(into_connection(page, total, Consent))
}

// ---------------------------------------------------------------------------------------------
// Mutations

/// One decision: give (`granted: true`) or withdraw (`false`) consent for a purpose.
#[derive(InputObject)]
pub struct ConsentChoiceInput {
    pub purpose: ConsentPurpose,
    pub granted: bool,
}

#[derive(InputObject)]
pub struct UpdateMyConsentsInput {
    /// At least one decision, at most one per purpose.
    pub consents: Vec<ConsentChoiceInput>,
    /// Version of the consent wording the patron agreed to (at most 50 characters).
    pub text_version: String,
}

#[derive(InputObject)]
pub struct UpdatePatronConsentsInput {
    pub patron_id: ID,
    /// At least one decision, at most one per purpose.
    pub consents: Vec<ConsentChoiceInput>,
    /// Version of the consent wording shown to the patron, if known (at most 50 characters).
    pub text_version: Option<String>,
    /// STAFF (taken by staff from the patron, the default) or IMPORT (from another system);
    /// APP is reserved to the patron's own `updateMyConsents`.
    #[graphql(default_with = "ConsentSource::Staff")]
    pub source: ConsentSource,
}

fn changes(choices: Vec<ConsentChoiceInput>) -> Vec<ConsentChange> {
    choices.into_iter().map(|c| ConsentChange::new(c.purpose.into(), c.granted)).collect()
}

/// The outcome of a consent update.
pub struct ConsentsPayload {
    patron_id: Uuid,
    recorded: Vec<consent_event::Model>,
}

#[Object]
impl ConsentsPayload {
    /// The events this call recorded.
    async fn recorded(&self) -> Vec<Consent> {
        self.recorded.iter().cloned().map(Consent).collect()
    }
    /// The patron's current consents after the change.
    async fn consents(&self, ctx: &Context<'_>) -> Result<Vec<Consent>> {
        let events = ctx.loader()?.load_one(PatronConsentsKey(self.patron_id)).await?.unwrap_or_default();
        Ok(events.into_iter().map(Consent).collect())
    }
    async fn patron(&self, ctx: &Context<'_>) -> Result<Patron> {
        load_patron(ctx, self.patron_id).await
    }
}

#[derive(Default)]
pub struct ConsentMutation;

#[Object]
impl ConsentMutation {
    /// The signed-in patron gives or withdraws consents (recorded with source APP).
    async fn update_my_consents(&self, ctx: &Context<'_>, input: UpdateMyConsentsInput) -> Result<ConsentsPayload> {
        let state = ctx.state()?;
        let patron_id = domain::own_patron_id(ctx.viewer())?;
        if input.text_version.trim().is_empty() {
            return Err(AppError::bad_field("input.textVersion", "give the version of the wording agreed to").into());
        }
        let changes = changes(input.consents);
        domain::validate_changes(&changes, Some(&input.text_version), true)?;
        let recorded =
            domain::record(&state.db, patron_id, &changes, db::ConsentSource::App, Some(&input.text_version)).await?;
        let detail = format!("source: APP; decisions recorded: {}", recorded.len());
        record_write(ctx, AuditAction::UpdateConsent, Some(patron_id), Some(detail)).await?;
        super::recommendations::invalidate_patron(state, patron_id).await;
        Ok(ConsentsPayload { patron_id, recorded })
    }

    /// Record consent decisions on a patron's behalf (staff, admins, partners with
    /// `patrons:write`).
    async fn update_patron_consents(
        &self,
        ctx: &Context<'_>,
        input: UpdatePatronConsentsInput,
    ) -> Result<ConsentsPayload> {
        let state = ctx.state()?;
        domain::check_write_for_patron(ctx.viewer())?;
        let patron_id = parse_global_id(&input.patron_id, NodeKind::Patron, "input.patronId")?;
        let source = domain::check_staff_source(input.source.into(), "input.source")?;
        let changes = changes(input.consents);
        domain::validate_changes(&changes, input.text_version.as_deref(), true)?;
        let recorded = domain::record(&state.db, patron_id, &changes, source, input.text_version.as_deref()).await?;
        let detail = format!("source: {}; decisions recorded: {}", source.as_str(), recorded.len());
        record_write(ctx, AuditAction::UpdateConsent, Some(patron_id), Some(detail)).await?;
        super::recommendations::invalidate_patron(state, patron_id).await;
        Ok(ConsentsPayload { patron_id, recorded })
    }
}
