//! Patron feedback: rating one's own interactions (1–5) and the 0–10 "would you recommend the
//! library" question (NPS), answered at most once per `NPS_INTERVAL_DAYS`.
//!
//! Only patrons give feedback, and only about themselves: staff may not rate on behalf of a patron.

use chrono::{Duration, Utc};
use entity::{interaction, nps_response};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

use super::validation;
use crate::{
    auth::Viewer,
    error::{AppError, AppResult},
};

/// A patron may answer the NPS question once per this many days.
pub const NPS_INTERVAL_DAYS: i64 = 90;

/// Longest feedback comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2_000;

fn patron_only(viewer: &Viewer, what: &str) -> AppResult<Uuid> {
    viewer.patron_id().ok_or_else(|| viewer.denied(what))
}

fn clean_comment(comment: Option<String>, field: &str) -> AppResult<Option<String>> {
    validation::optional_text(comment.as_deref(), field, MAX_COMMENT_CHARS)
}

/// Rate one of the signed-in patron's own interactions (replaces an earlier rating).
pub async fn rate_interaction(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    interaction_id: Uuid,
    rating: i32,
    comment: Option<String>,
) -> AppResult<interaction::Model> {
    let me = patron_only(viewer, "rate interactions (only the patron concerned may)")?;
    let rating = validation::rating(rating, "rating")?;
    let comment = clean_comment(comment, "comment")?;
    let model = interaction::Entity::find_by_id(interaction_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("interaction"))?;
    if model.patron_id != Some(me) {
        // Same answer whether the interaction exists or belongs to someone else would leak
        // nothing more; another patron's interaction is simply not theirs to rate.
        return Err(AppError::forbidden("rate another patron's interaction"));
    }
    let mut active: interaction::ActiveModel = model.into();
    active.rating = Set(Some(rating));
    active.comment = Set(comment);
    active.updated_at = Set(Utc::now());
    Ok(active.update(db).await?)
}

/// Record the signed-in patron's NPS answer; `CONFLICT` (naming the date it is allowed again)
/// when they answered within the last `NPS_INTERVAL_DAYS` days.
pub async fn answer_nps(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    score: i32,
    comment: Option<String>,
) -> AppResult<nps_response::Model> {
    let me = patron_only(viewer, "answer the recommendation question (patrons only)")?;
    if !(0..=10).contains(&score) {
        return Err(AppError::bad_field("score", "must be between 0 and 10"));
    }
    let comment = clean_comment(comment, "comment")?;
    let now = Utc::now();
    let last = nps_response::Entity::find()
        .filter(nps_response::Column::PatronId.eq(me))
        .order_by_desc(nps_response::Column::AnsweredAt)
        .one(db)
        .await?;
    if let Some(last) = last {
        let allowed_at = last.answered_at + Duration::days(NPS_INTERVAL_DAYS);
        if allowed_at > now {
            return Err(AppError::conflict(format!(
                "already answered on {}; you may answer again from {}",
                last.answered_at.date_naive(),
                allowed_at.date_naive()
            )));
        }
    }
    let model = nps_response::ActiveModel {
        id: Set(Uuid::now_v7()),
        patron_id: Set(me),
        score: Set(score as i16),
        comment: Set(comment),
        answered_at: Set(now),
    };
    Ok(model.insert(db).await?)
}
