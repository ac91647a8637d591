//! Patron feedback: `rateInteraction` and `answerNps` (patrons only, about themselves).

use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Duration, Utc};
use entity::nps_response;

use super::{
    context::ContextExt,
    ids::{NodeKind, parse_global_id},
    interactions::Interaction,
};
use crate::domain::feedback as domain;

/// A recorded answer to "how likely are you to recommend the library" (0–10).
pub struct NpsAnswer(pub nps_response::Model);

#[Object]
impl NpsAnswer {
    async fn score(&self) -> i32 {
        i32::from(self.0.score)
    }
    async fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }
    async fn answered_at(&self) -> DateTime<Utc> {
        self.0.answered_at
    }
    /// When the patron may answer again.
    async fn next_allowed_at(&self) -> DateTime<Utc> {
        self.0.answered_at + Duration::days(domain::NPS_INTERVAL_DAYS)
    }
}

#[derive(Default)]
pub struct FeedbackMutation;

#[Object]
impl FeedbackMutation {
    /// Rate one of your own interactions, 1 to 5, with an optional comment (patrons only;
    /// replaces an earlier rating). Another patron's interaction → FORBIDDEN.
    async fn rate_interaction(
        &self,
        ctx: &Context<'_>,
        interaction_id: ID,
        rating: i32,
        comment: Option<String>,
    ) -> Result<Interaction> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        if viewer.patron_id().is_none() {
            return Err(viewer.denied("rate interactions (only the patron concerned may)").into());
        }
        let id = parse_global_id(&interaction_id, NodeKind::Interaction, "interactionId")?;
        let model = domain::rate_interaction(&state.db, viewer, id, rating, comment).await?;
        Ok(Interaction(model))
    }

    /// Answer "how likely are you to recommend the library" (0–10), at most once per 90 days
    /// (patrons only); too soon → CONFLICT naming the date it is allowed again.
    async fn answer_nps(&self, ctx: &Context<'_>, score: i32, comment: Option<String>) -> Result<NpsAnswer> {
        let state = ctx.state()?;
        Ok(NpsAnswer(domain::answer_nps(&state.db, ctx.viewer(), score, comment).await?))
    }
}
