//! Patron feedback: rating one's own interactions (1–5) and the 0–10 "would you recommend the
//! library" question (NPS), answered at most once per `NPS_INTERVAL_DAYS`.
//!
//! Only patrons give feedback, and only about themselves: staff may not rate on behalf of a patron.

use chrono::{Duration, Utc};
use entity::{interaction, nps_response};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set, Statement,
    TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use super::{rollups, validation};
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

/// Takes the write lock on one row before anything is read in `txn`: a row lock on PostgreSQL,
/// the database write lock on SQLite. Reading first and writing later would let two concurrent
/// requests both pass a check (PostgreSQL) or fail with a stale snapshot (SQLite WAL).
async fn lock_row<C: ConnectionTrait>(txn: &C, table: &str, id: Uuid) -> AppResult<bool> {
    let backend = txn.get_database_backend();
    let sql = format!("UPDATE {table} SET id = id WHERE id = {}", rollups::ph(backend, 1));
    let result = txn.execute_raw(Statement::from_sql_and_values(backend, sql, [id.into()])).await?;
    Ok(result.rows_affected() > 0)
}

/// Rate one of the signed-in patron's own interactions (replaces an earlier rating). The
/// satisfaction roll-up behind funder reports moves in the same transaction.
pub async fn rate_interaction<C>(
    db: &C,
    viewer: &Viewer,
    interaction_id: Uuid,
    rating: i32,
    comment: Option<String>,
) -> AppResult<interaction::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    let me = patron_only(viewer, "rate interactions (only the patron concerned may)")?;
    let rating = validation::rating(rating, "rating")?;
    let comment = clean_comment(comment, "comment")?;
    let txn = db.begin().await?;
    if !lock_row(&txn, "interaction", interaction_id).await? {
        return Err(AppError::not_found("interaction"));
    }
    let model = interaction::Entity::find_by_id(interaction_id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("interaction"))?;
    if model.patron_id != Some(me) {
        // Same answer whether the interaction exists or belongs to someone else would leak
        // nothing more; another patron's interaction is simply not theirs to rate.
        return Err(AppError::forbidden("rate another patron's interaction"));
    }
    rollups::rating_changed(&txn, &model, Some(rating)).await?;
    let mut active: interaction::ActiveModel = model.into();
    active.rating = Set(Some(rating));
    active.comment = Set(comment);
    active.updated_at = Set(Utc::now());
    let updated = active.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Record the signed-in patron's NPS answer; `CONFLICT` (naming the date it is allowed again)
/// when they answered within the last `NPS_INTERVAL_DAYS` days. The patron row is locked first,
/// so two simultaneous answers cannot both pass the check.
pub async fn answer_nps<C>(
    db: &C,
    viewer: &Viewer,
    score: i32,
    comment: Option<String>,
) -> AppResult<nps_response::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    let me = patron_only(viewer, "answer the recommendation question (patrons only)")?;
    if !(0..=10).contains(&score) {
        return Err(AppError::bad_field("score", "must be between 0 and 10"));
    }
    let comment = clean_comment(comment, "comment")?;
    let txn = db.begin().await?;
    if !lock_row(&txn, "patron", me).await? {
        return Err(AppError::not_found("patron"));
    }
    let now = Utc::now();
    let last = nps_response::Entity::find()
        .filter(nps_response::Column::PatronId.eq(me))
        .order_by_desc(nps_response::Column::AnsweredAt)
        .one(&txn)
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
    let inserted = model.insert(&txn).await?;
    txn.commit().await?;
    Ok(inserted)
}
