//! Demo segments and a launched campaign with a measurable effect.
//!
//! - "Lapsed online learners" (online learners AT_RISK or LAPSED), "Active faculty" (faculty,
//!   ACTIVE) and "Active students" (online learners and on-campus students, ACTIVE): segments of
//!   very different size and make-up;
//! - "Cite with confidence": an IN_APP campaign over the active students promoting the citation
//!   workshop, launched three weeks before the anchor with a 30% holdout and a 30-day window (so
//!   it is still open), launched through `domain::campaigns::launch_in` like any other; some
//!   messages were opened.
//!
//! The effect: for a share of the reached members who came back to the library after the
//! message, their first later interaction becomes a use of the promoted service. The holdout
//! keeps its natural use, so the lift over the holdout is real. Interactions are changed, never
//! added: the demo keeps exactly the number of interactions asked for.
//!
//! Randomness comes from a ChaCha stream of the catalogue part at an index no other part of the
//! generator uses, so the campaign is as reproducible as the rest of the library.

use chrono::{DateTime, Duration, Utc};
use entity::{
    campaign, campaign_delivery,
    enums::{CampaignChannel, CampaignStatus, PatronType},
    interaction, segment, service,
};
use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{
    calendar::Frame,
    rng::{Part, stream, uuid_at},
};
use crate::{
    config::LifecycleSettings,
    domain::{campaigns, engagement::LifecycleStage, segments::SegmentRule},
};

/// Stream index of the campaign demo within the catalogue part (the catalogue uses index 0).
const STREAM: u64 = 0xCA4D_0000;
/// The promoted service.
const PROMOTED: &str = "CITE-WS";
/// Days before the anchor the campaign was launched.
const LAUNCHED_DAYS_AGO: i64 = 21;
/// Share of delivered members who came back and took up the promoted service.
const UPTAKE: f64 = 0.4;
/// Share of messages opened.
const OPEN_RATE: f64 = 0.45;

/// What [`write`] created.
#[derive(Debug, Clone, Copy, Default)]
pub struct CampaignDemo {
    pub segments: u64,
    pub campaigns: u64,
    pub deliveries: u64,
    /// Interactions turned into uses of the promoted service.
    pub conversions: u64,
}

async fn insert_segment(
    txn: &DatabaseTransaction,
    id: Uuid,
    name: &str,
    rule: &SegmentRule,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    segment::ActiveModel {
        id: Set(id),
        name: Set(name.to_owned()),
        rule: Set(rule.to_json()?),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// Write the demo segments and campaign (see the module documentation). Call it after the
/// interactions are written and before the roll-ups are rebuilt.
pub async fn write(txn: &DatabaseTransaction, frame: &Frame, seed: u64) -> anyhow::Result<CampaignDemo> {
    let mut rng = stream(seed, Part::Catalog, STREAM);
    let mut report = CampaignDemo::default();
    let launched_at = frame.anchor - Duration::days(LAUNCHED_DAYS_AGO) + Duration::hours(10);
    if launched_at <= frame.start {
        return Ok(report);
    }
    let defined_at = launched_at - Duration::days(2);

    let lapsed_id = uuid_at(&mut rng, defined_at);
    let lapsed = SegmentRule {
        patron_types: vec![PatronType::OnlineLearner],
        lifecycle_stages: vec![LifecycleStage::AtRisk, LifecycleStage::Lapsed],
        ..SegmentRule::default()
    };
    insert_segment(txn, lapsed_id, "Lapsed online learners", &lapsed, defined_at).await?;
    let faculty_id = uuid_at(&mut rng, defined_at + Duration::minutes(5));
    let faculty = SegmentRule {
        patron_types: vec![PatronType::Faculty],
        lifecycle_stages: vec![LifecycleStage::Active],
        ..SegmentRule::default()
    };
    insert_segment(txn, faculty_id, "Active faculty", &faculty, defined_at + Duration::minutes(5)).await?;
    let students_id = uuid_at(&mut rng, defined_at + Duration::minutes(10));
    let students = SegmentRule {
        patron_types: vec![PatronType::OnlineLearner, PatronType::OnCampusStudent],
        lifecycle_stages: vec![LifecycleStage::Active],
        ..SegmentRule::default()
    };
    insert_segment(txn, students_id, "Active students", &students, defined_at + Duration::minutes(10)).await?;
    report.segments = 3;

    let Some(promoted) = service::Entity::find().filter(service::Column::Code.eq(PROMOTED)).one(txn).await? else {
        return Ok(report);
    };
    let created_at = defined_at + Duration::hours(1);
    let campaign_id = uuid_at(&mut rng, created_at);
    campaign::ActiveModel {
        id: Set(campaign_id),
        name: Set("Cite with confidence".to_owned()),
        segment_id: Set(students_id),
        promoted_service_id: Set(promoted.id),
        channel: Set(CampaignChannel::InApp),
        message: Set("Lost in reference styles? Our 45-minute citation workshop runs every week, on \
                      campus and online: book a seat in the app."
            .to_owned()),
        holdout_percent: Set(30),
        conversion_window_days: Set(30),
        status: Set(CampaignStatus::Draft),
        launched_at: Set(None),
        ends_at: Set(None),
        targeted: Set(0),
        holdout: Set(0),
        skipped_no_consent: Set(0),
        created_at: Set(created_at),
        updated_at: Set(created_at),
    }
    .insert(txn)
    .await?;
    let launched = campaigns::launch_in(txn, campaign_id, launched_at, LifecycleSettings::default()).await?;
    report.campaigns = 1;

    // In-app messages are delivered at launch.
    let delivered_at = launched_at;
    let conversion_ends_at = delivered_at + Duration::days(i64::from(launched.conversion_window_days));

    let deliveries: Vec<(Uuid, Option<Uuid>)> = campaign_delivery::Entity::find()
        .select_only()
        .column(campaign_delivery::Column::Id)
        .column(campaign_delivery::Column::PatronId)
        .filter(campaign_delivery::Column::CampaignId.eq(campaign_id))
        .order_by_asc(campaign_delivery::Column::Id)
        .into_tuple()
        .all(txn)
        .await?;
    report.deliveries = deliveries.len() as u64;
    let mut opened = Vec::new();
    let mut converting = Vec::new();
    for (delivery_id, patron_id) in &deliveries {
        if rng.random_bool(OPEN_RATE) {
            opened.push(*delivery_id);
        }
        if let Some(patron_id) = patron_id
            && rng.random_bool(UPTAKE)
        {
            converting.push(*patron_id);
        }
    }
    for chunk in opened.chunks(1_000) {
        campaign_delivery::Entity::update_many()
            .col_expr(campaign_delivery::Column::OpenedAt, Expr::value(delivered_at + Duration::hours(5)))
            .filter(campaign_delivery::Column::Id.is_in(chunk.iter().copied()))
            .exec(txn)
            .await?;
    }

    // The first visit after the message of each converting member becomes a use of the service.
    let until = std::cmp::min(conversion_ends_at, frame.anchor);
    let mut changed = Vec::new();
    for chunk in converting.chunks(1_000) {
        let later: Vec<(Uuid, Option<Uuid>)> = interaction::Entity::find()
            .select_only()
            .column(interaction::Column::Id)
            .column(interaction::Column::PatronId)
            .filter(interaction::Column::PatronId.is_in(chunk.iter().copied()))
            .filter(interaction::Column::OccurredAt.gte(delivered_at))
            .filter(interaction::Column::OccurredAt.lt(until))
            .order_by_asc(interaction::Column::PatronId)
            .order_by_asc(interaction::Column::OccurredAt)
            .order_by_asc(interaction::Column::Id)
            .into_tuple()
            .all(txn)
            .await?;
        let mut last_patron = None;
        for (id, patron) in later {
            if patron != last_patron {
                changed.push(id);
                last_patron = patron;
            }
        }
    }
    for chunk in changed.chunks(1_000) {
        interaction::Entity::update_many()
            .col_expr(interaction::Column::ServiceId, Expr::value(promoted.id))
            .filter(interaction::Column::Id.is_in(chunk.iter().copied()))
            .exec(txn)
            .await?;
    }
    report.conversions = changed.len() as u64;
    tracing::debug!(
        deliveries = report.deliveries,
        conversions = report.conversions,
        targeted = launched.targeted,
        holdout = launched.holdout,
        "demo campaign written"
    );
    Ok(report)
}
