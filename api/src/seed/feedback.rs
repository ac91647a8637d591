//! Demo answers to "how likely are you to recommend the library" (NPS), so the dashboard and
//! the funder reports show a score.
//!
//! A patron with some history is asked now and then while they use the library: from their first
//! interaction, every 90 to 270 days until their last one, they answer with a probability that
//! grows with how much they use the library. Scores lean on engagement the way surveys find
//! it: heavy, broad users tend to be promoters, occasional ones passives or detractors. Each
//! patron gets at most one answer per 90 days, like the API enforces.

use chrono::{DateTime, Duration, Utc};
use entity::{interaction, nps_response};
use rand::Rng;
use sea_orm::{
    ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{
    calendar::Frame,
    rng::{Part, normal, stream, uuid_at},
};

/// Fewest days between two answers of one patron (the API's rule).
const MIN_GAP_DAYS: i64 = 90;
/// Answers one patron gives at most.
const MAX_ANSWERS: usize = 4;

/// `(patron, first interaction, last interaction, interactions, distinct services)`.
type Activity = (Uuid, DateTime<Utc>, DateTime<Utc>, i64, i64);

/// The chance that a patron asked at one moment answers.
fn answer_rate(interactions: i64) -> f64 {
    (0.12 + 0.04 * (1.0 + interactions as f64).ln()).min(0.45)
}

/// A 0–10 score around a mean that rises with use and breadth.
fn draw_score(rng: &mut super::rng::DemoRng, interactions: i64, services: i64) -> i16 {
    let use_share = ((1.0 + interactions as f64).ln() / 60f64.ln()).min(1.0);
    let breadth = (services as f64 / 5.0).min(1.0);
    let mean = 5.6 + 2.6 * use_share + 1.0 * breadth;
    normal(rng, mean, 1.9).round().clamp(0.0, 10.0) as i16
}

/// Builds the answers from the interactions already written in `txn` (one grouped query).
pub async fn answers(txn: &DatabaseTransaction, frame: &Frame, seed: u64) -> Result<Vec<nps_response::Model>, DbErr> {
    let activity: Vec<Activity> = interaction::Entity::find()
        .select_only()
        .column(interaction::Column::PatronId)
        .column_as(interaction::Column::OccurredAt.min(), "first_at")
        .column_as(interaction::Column::OccurredAt.max(), "last_at")
        .column_as(interaction::Column::Id.count(), "n")
        .column_as(Expr::col(interaction::Column::ServiceId).count_distinct(), "services")
        .filter(interaction::Column::PatronId.is_not_null())
        .group_by(interaction::Column::PatronId)
        .order_by_asc(interaction::Column::PatronId)
        .into_tuple()
        .all(txn)
        .await?;
    let mut out = Vec::new();
    for (index, (patron_id, first_at, last_at, n, services)) in activity.into_iter().enumerate() {
        let mut rng = stream(seed, Part::Feedback, index as u64);
        let rate = answer_rate(n);
        let mut at = first_at + Duration::hours(rng.random_range(1..24 * 60));
        let mut given = 0;
        while at <= last_at && at < frame.anchor && given < MAX_ANSWERS {
            if rng.random_bool(rate) {
                out.push(nps_response::Model {
                    id: uuid_at(&mut rng, at),
                    patron_id,
                    score: draw_score(&mut rng, n, services),
                    comment: None,
                    answered_at: at,
                });
                given += 1;
            }
            at += Duration::days(rng.random_range(MIN_GAP_DAYS..=3 * MIN_GAP_DAYS));
        }
    }
    out.sort_unstable_by_key(|row| row.id);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_broad_users_score_higher_than_occasional_ones() {
        let mean = |n, s| {
            let mut rng = stream(1, Part::Feedback, 0);
            (0..2_000).map(|_| f64::from(draw_score(&mut rng, n, s))).sum::<f64>() / 2_000.0
        };
        let (occasional, heavy) = (mean(2, 1), mean(80, 6));
        assert!(occasional < 7.0 && heavy > 8.5, "{occasional} vs {heavy}");
        assert!(answer_rate(1) < answer_rate(100));
        assert!(answer_rate(1_000_000) <= 0.45);
    }
}
