//! Campaigns: outreach promoting a service to a segment over one channel, measured against a
//! random holdout.
//!
//! # Launch
//!
//! In one transaction: every member of the segment (as of the launch) is assigned to the
//! holdout when the first 8 bytes of `sha256(campaign id ‖ patron id)` (16 bytes each), read as
//! a big-endian number modulo 100, are below `holdoutPercent`, so the split is reproducible from
//! the two ids alone and a larger holdout contains a smaller one; the membership
//! snapshot is stored with each member's consent to the channel at launch; a delivery is created
//! for every treatment member who consents (`domain::consent::consenting` with the channel's
//! marketing purpose), and the treatment members skipped for lack of consent are counted. The
//! segment is walked in id order in batches, each written with multi-row inserts. A campaign
//! launches once: a second launch is a CONFLICT.
//!
//! In-app deliveries are delivered at launch (they are in the patron's inbox); the other
//! channels wait in `pendingDeliveries` until a partner tool reports them delivered.
//!
//! # Measuring
//!
//! A treatment delivery converts when its patron used the promoted service within the
//! conversion window after the delivery; a holdout member converts when they used it within the
//! window after the launch. The comparison is between like groups: deliveries (treatment
//! members who consented at launch) against holdout members who consented at launch, so consent
//! does not bias the lift:
//!
//! - treatment rate `p₁ = converted / deliveries`, holdout rate `p₀ = holdoutConverted /
//!   holdoutEligible`, lift `p₁ − p₀`;
//! - 95% confidence interval of the lift by the normal approximation for the difference of two
//!   independent proportions (Wald): `p₁ − p₀ ± 1.96 · √(p₁(1−p₁)/n₁ + p₀(1−p₀)/n₀)`; absent
//!   when either group is empty. It is rough for small groups or rates near 0 or 1.
//!
//! Everything is counted in SQL (`EXISTS` over the interactions of each member).
//!
//! A campaign is **open** from its launch until its conversion window after launch ends
//! (`endsAt`); the dashboard counts open campaigns.
//!
//! Staff, admins and partners with `campaigns:read` read campaigns and pending deliveries;
//! `campaigns:write` creates, launches and marks deliveries. A patron reads only their own in-app
//! inbox and marks their own messages read.

use std::collections::HashMap;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use entity::{
    campaign, campaign_delivery, campaign_member,
    enums::{CampaignChannel, CampaignStatus},
    interaction, segment, service,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, RelationTrait, Set, TransactionOptions, TransactionSession, TransactionTrait,
    sea_query::{Expr, ExprTrait, JoinType, Query, SelectStatement},
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    aggregate::{self, count_where},
    consent,
    pagination::{Cursor, Keyset, Page, PageWindow, SortDirection, SortValue},
    segments::{self, SegmentRule},
    validation,
};
use crate::{
    auth::{Capability, Viewer},
    config::LifecycleSettings,
    error::{AppError, AppResult},
};

const MAX_NAME_LEN: usize = 200;
const MAX_MESSAGE_LEN: usize = 2_000;
pub const MAX_HOLDOUT_PERCENT: i32 = 50;
pub const MAX_WINDOW_DAYS: i32 = 365;
/// Segment members read, assigned and written per batch at launch.
const LAUNCH_BATCH: u64 = 5_000;
/// Rows per multi-row insert (bind parameters stay far below both databases' limits).
const INSERT_ROWS: usize = 1_000;
/// Most deliveries one `markDelivered` / `markOpened` call may name.
pub const MAX_MARK_IDS: usize = 1_000;
/// z for a two-sided 95% interval.
const Z_95: f64 = 1.959_963_984_540_054;

#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub name: String,
    pub segment_id: Uuid,
    pub promoted_service_id: Uuid,
    pub channel: CampaignChannel,
    pub message: String,
    pub holdout_percent: i32,
    pub conversion_window_days: i32,
}

// ---------------------------------------------------------------------------------------------
// Access rules

pub fn check_read(viewer: &Viewer) -> AppResult<()> {
    viewer.require(Capability::ReadCampaigns)
}

pub fn check_write(viewer: &Viewer) -> AppResult<()> {
    viewer.require(Capability::WriteCampaigns)
}

/// The signed-in patron, for their inbox.
pub fn inbox_owner(viewer: &Viewer) -> AppResult<Uuid> {
    viewer.require_authenticated()?;
    viewer.patron_id().ok_or_else(|| viewer.denied("read a patron inbox (use `pendingDeliveries`)"))
}

/// A delivery is readable by its patron and by campaign readers.
pub fn check_read_delivery(viewer: &Viewer, delivery: &campaign_delivery::Model) -> AppResult<()> {
    if viewer.can(Capability::ReadCampaigns) {
        return Ok(());
    }
    match viewer.patron_id() {
        Some(me) if delivery.patron_id == Some(me) => Ok(()),
        Some(_) => Err(viewer.denied("read another patron's messages")),
        None => Err(viewer.denied("read campaign deliveries")),
    }
}

// ---------------------------------------------------------------------------------------------
// Assignment

/// Whether `patron_id` is in the holdout of `campaign_id` (see the module documentation).
pub fn in_holdout(campaign_id: Uuid, patron_id: Uuid, holdout_percent: i32) -> bool {
    let digest = Sha256::new().chain_update(campaign_id.as_bytes()).chain_update(patron_id.as_bytes()).finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let bucket = u64::from_be_bytes(head) % 100;
    bucket < u64::try_from(holdout_percent).unwrap_or(0)
}

/// A time-ordered id for a row derived from the launch: the same campaign, patron and launch
/// time give the same id (so a seeded library is reproducible).
fn derived_id(at: DateTime<Utc>, campaign_id: Uuid, patron_id: Uuid, salt: u8) -> Uuid {
    let digest = Sha256::new()
        .chain_update([salt])
        .chain_update(campaign_id.as_bytes())
        .chain_update(patron_id.as_bytes())
        .finalize();
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

fn window_days(campaign: &campaign::Model) -> Duration {
    Duration::days(i64::from(campaign.conversion_window_days))
}

// ---------------------------------------------------------------------------------------------
// Campaigns

fn list_keyset() -> Keyset {
    Keyset::new(Expr::col(campaign::Column::CreatedAt), Expr::col(campaign::Column::Id), SortDirection::Desc)
}

/// Campaigns, newest first.
pub async fn list(db: &impl ConnectionTrait, viewer: &Viewer, window: &PageWindow) -> AppResult<Page<campaign::Model>> {
    check_read(viewer)?;
    window.time_position()?;
    list_keyset()
        .fetch(db, campaign::Entity::find(), window, |m| Cursor::new(SortValue::Time(m.created_at), m.id))
        .await
}

pub async fn count(db: &impl ConnectionTrait, viewer: &Viewer) -> AppResult<u64> {
    check_read(viewer)?;
    Ok(campaign::Entity::find().count(db).await?)
}

pub async fn get(db: &impl ConnectionTrait, viewer: &Viewer, id: Uuid) -> AppResult<campaign::Model> {
    check_read(viewer)?;
    campaign::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::not_found("campaign"))
}

/// Campaigns by id, for loaders (the caller checks access).
pub async fn by_ids(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<campaign::Model>> {
    Ok(campaign::Entity::find().filter(campaign::Column::Id.is_in(ids.iter().copied())).all(db).await?)
}

pub async fn create(db: &impl ConnectionTrait, viewer: &Viewer, input: NewCampaign) -> AppResult<campaign::Model> {
    check_write(viewer)?;
    let name = validation::required_text(&input.name, "input.name", MAX_NAME_LEN)?;
    let message = validation::required_text(&input.message, "input.message", MAX_MESSAGE_LEN)?;
    if !(0..=MAX_HOLDOUT_PERCENT).contains(&input.holdout_percent) {
        return Err(AppError::bad_field("input.holdoutPercent", format!("must be from 0 to {MAX_HOLDOUT_PERCENT}")));
    }
    if !(1..=MAX_WINDOW_DAYS).contains(&input.conversion_window_days) {
        return Err(AppError::bad_field(
            "input.conversionWindowDays",
            format!("must be from 1 to {MAX_WINDOW_DAYS} days"),
        ));
    }
    if segment::Entity::find_by_id(input.segment_id).count(db).await? == 0 {
        return Err(AppError::bad_field("input.segmentId", "unknown segment"));
    }
    let promoted = service::Entity::find_by_id(input.promoted_service_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::bad_field("input.promotedServiceId", "unknown service"))?;
    if !promoted.active {
        return Err(AppError::bad_field("input.promotedServiceId", "an inactive service cannot be promoted"));
    }
    let now = Utc::now().trunc_subsecs(6);
    let model = campaign::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name),
        segment_id: Set(input.segment_id),
        promoted_service_id: Set(input.promoted_service_id),
        channel: Set(input.channel),
        message: Set(message),
        holdout_percent: Set(input.holdout_percent),
        conversion_window_days: Set(input.conversion_window_days),
        status: Set(CampaignStatus::Draft),
        launched_at: Set(None),
        ends_at: Set(None),
        targeted: Set(0),
        holdout: Set(0),
        skipped_no_consent: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    };
    Ok(model.insert(db).await?)
}

/// Launch a campaign now (see the module documentation).
pub async fn launch<C>(db: &C, viewer: &Viewer, id: Uuid, thresholds: LifecycleSettings) -> AppResult<campaign::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    check_write(viewer)?;
    // IMMEDIATE on SQLite takes the write lock up front, so two launches never both pass the
    // status check; on PostgreSQL the campaign row is locked.
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let txn = db.begin_with_options(options).await?;
    let launched = launch_in(&txn, id, Utc::now().trunc_subsecs(6), thresholds).await?;
    txn.commit().await?;
    Ok(launched)
}

/// What [`launch_in`] wrote, by group.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    targeted: i64,
    holdout: i64,
    skipped: i64,
}

/// Launch on the caller's transaction at `at` (the seed launches its demo campaign in the past).
pub async fn launch_in(
    txn: &impl ConnectionTrait,
    id: Uuid,
    at: DateTime<Utc>,
    thresholds: LifecycleSettings,
) -> AppResult<campaign::Model> {
    let existing = campaign::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| AppError::not_found("campaign"))?;
    if existing.status != CampaignStatus::Draft {
        return Err(AppError::conflict("this campaign has already been launched"));
    }
    let segment = segment::Entity::find_by_id(existing.segment_id)
        .one(txn)
        .await?
        .ok_or_else(|| AppError::not_found("segment"))?;
    let rule = SegmentRule::of(&segment)?;
    let purpose = existing.channel.consent_purpose();
    // In-app messages are in the inbox as soon as they exist.
    let delivered_at = (existing.channel == CampaignChannel::InApp).then_some(at);
    let conversion_ends_at = delivered_at.map(|t| t + window_days(&existing));

    let mut tally = Tally::default();
    let mut after = None;
    loop {
        let ids = segments::member_ids(txn, &rule, at, thresholds, after, LAUNCH_BATCH).await?;
        let Some(last) = ids.last().copied() else {
            break;
        };
        after = Some(last);
        let consenting = consent::consenting(txn, &ids, purpose).await?;
        let mut members = Vec::with_capacity(ids.len());
        let mut deliveries = Vec::new();
        for patron_id in &ids {
            let holdout = in_holdout(id, *patron_id, existing.holdout_percent);
            let consented = consenting.contains(patron_id);
            members.push(campaign_member::ActiveModel {
                id: Set(derived_id(at, id, *patron_id, 1)),
                campaign_id: Set(id),
                patron_id: Set(Some(*patron_id)),
                in_holdout: Set(holdout),
                consented: Set(consented),
                created_at: Set(at),
            });
            if holdout {
                tally.holdout += 1;
                continue;
            }
            tally.targeted += 1;
            if !consented {
                tally.skipped += 1;
                continue;
            }
            deliveries.push(campaign_delivery::ActiveModel {
                id: Set(derived_id(at, id, *patron_id, 2)),
                campaign_id: Set(id),
                patron_id: Set(Some(*patron_id)),
                channel: Set(existing.channel),
                created_at: Set(at),
                delivered_at: Set(delivered_at),
                conversion_ends_at: Set(conversion_ends_at),
                opened_at: Set(None),
            });
        }
        insert_chunks(txn, members).await?;
        insert_chunks(txn, deliveries).await?;
        if (ids.len() as u64) < LAUNCH_BATCH {
            break;
        }
    }

    let ends_at = at + window_days(&existing);
    let mut model: campaign::ActiveModel = existing.into();
    model.status = Set(CampaignStatus::Launched);
    model.launched_at = Set(Some(at));
    model.ends_at = Set(Some(ends_at));
    model.targeted = Set(tally.targeted);
    model.holdout = Set(tally.holdout);
    model.skipped_no_consent = Set(tally.skipped);
    model.updated_at = Set(at);
    Ok(model.update(txn).await?)
}

async fn insert_chunks<A>(db: &impl ConnectionTrait, rows: Vec<A>) -> AppResult<()>
where
    A: ActiveModelTrait + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(INSERT_ROWS).collect();
        <A::Entity as EntityTrait>::insert_many(chunk).exec_without_returning(db).await?;
    }
    Ok(())
}

/// Launched campaigns open at `at`: launched at or before it, window after launch not over.
pub async fn open_count(db: &impl ConnectionTrait, at: DateTime<Utc>) -> AppResult<u64> {
    Ok(campaign::Entity::find()
        .filter(campaign::Column::Status.eq(CampaignStatus::Launched))
        .filter(campaign::Column::LaunchedAt.lte(at))
        .filter(campaign::Column::EndsAt.gt(at))
        .count(db)
        .await?)
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// A campaign's figures (see the module documentation for the definitions).
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignStats {
    /// Treatment group: members not in the holdout.
    pub targeted: u64,
    pub holdout: u64,
    pub skipped_no_consent: u64,
    /// Deliveries created: consenting treatment members.
    pub deliveries: u64,
    pub delivered: u64,
    pub opened: u64,
    /// Delivered treatment members who used the promoted service within the window after delivery.
    pub converted: u64,
    /// Holdout members who consented to the channel at launch: the comparison group.
    pub holdout_eligible: u64,
    /// Of those, the ones who used the promoted service within the window after launch.
    pub holdout_converted: u64,
}

/// A 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl CampaignStats {
    pub fn treatment_rate(&self) -> Option<f64> {
        rate(self.converted, self.deliveries)
    }

    pub fn holdout_rate(&self) -> Option<f64> {
        rate(self.holdout_converted, self.holdout_eligible)
    }

    /// Treatment rate minus holdout rate.
    pub fn lift(&self) -> Option<f64> {
        Some(self.treatment_rate()? - self.holdout_rate()?)
    }

    /// Wald interval of the lift (normal approximation for a difference of two proportions).
    pub fn lift_interval(&self) -> Option<Interval> {
        let (p1, p0) = (self.treatment_rate()?, self.holdout_rate()?);
        let (n1, n0) = (self.deliveries as f64, self.holdout_eligible as f64);
        let se = (p1 * (1.0 - p1) / n1 + p0 * (1.0 - p0) / n0).sqrt();
        let lift = p1 - p0;
        Some(Interval { low: lift - Z_95 * se, high: lift + Z_95 * se })
    }
}

fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Uses of the service in `service` by the patron in `patron`, at or after `from` and before
/// `until` (all correlated columns of the outer query).
fn used_between(service: Expr, patron: Expr, from: Expr, until: Expr) -> SelectStatement {
    Query::select()
        .expr(Expr::val(1))
        .from(interaction::Entity)
        .and_where(Expr::col((interaction::Entity, interaction::Column::PatronId)).eq(patron))
        .and_where(Expr::col((interaction::Entity, interaction::Column::ServiceId)).eq(service))
        .and_where(Expr::col((interaction::Entity, interaction::Column::OccurredAt)).gte(from))
        .and_where(Expr::col((interaction::Entity, interaction::Column::OccurredAt)).lt(until))
        .to_owned()
}

type DeliveryRow = (Uuid, i64, Option<i64>, Option<i64>, Option<i64>);

/// The figures of each of `campaigns`: two grouped statements, however many campaigns.
pub async fn stats_for(
    db: &impl ConnectionTrait,
    campaigns: &[campaign::Model],
) -> AppResult<HashMap<Uuid, CampaignStats>> {
    if campaigns.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<Uuid> = campaigns.iter().map(|c| c.id).collect();
    let promoted = || Expr::col((campaign::Entity, campaign::Column::PromotedServiceId));
    let delivery = |c: campaign_delivery::Column| Expr::col((campaign_delivery::Entity, c));
    let converted = Condition::all().add(delivery(campaign_delivery::Column::DeliveredAt).is_not_null()).add(
        Expr::exists(used_between(
            promoted(),
            delivery(campaign_delivery::Column::PatronId),
            delivery(campaign_delivery::Column::DeliveredAt),
            delivery(campaign_delivery::Column::ConversionEndsAt),
        )),
    );
    let delivery_rows: Vec<DeliveryRow> = campaign_delivery::Entity::find()
        .select_only()
        .column(campaign_delivery::Column::CampaignId)
        .expr(Expr::col((campaign_delivery::Entity, campaign_delivery::Column::Id)).count())
        .expr(count_where(delivery(campaign_delivery::Column::DeliveredAt).is_not_null()))
        .expr(count_where(delivery(campaign_delivery::Column::OpenedAt).is_not_null()))
        .expr(count_where(converted))
        .join(JoinType::InnerJoin, campaign_delivery::Relation::Campaign.def())
        .filter(campaign_delivery::Column::CampaignId.is_in(ids.iter().copied()))
        .group_by(campaign_delivery::Column::CampaignId)
        .into_tuple()
        .all(db)
        .await?;
    let deliveries: HashMap<Uuid, DeliveryRow> = delivery_rows.into_iter().map(|r| (r.0, r)).collect();

    let member = |c: campaign_member::Column| Expr::col((campaign_member::Entity, c));
    let held_converted = Expr::exists(used_between(
        promoted(),
        member(campaign_member::Column::PatronId),
        Expr::col((campaign::Entity, campaign::Column::LaunchedAt)),
        Expr::col((campaign::Entity, campaign::Column::EndsAt)),
    ));
    let holdout_rows: Vec<(Uuid, i64, Option<i64>)> = campaign_member::Entity::find()
        .select_only()
        .column(campaign_member::Column::CampaignId)
        .expr(Expr::col((campaign_member::Entity, campaign_member::Column::Id)).count())
        .expr(count_where(held_converted))
        .join(JoinType::InnerJoin, campaign_member::Relation::Campaign.def())
        .filter(campaign_member::Column::CampaignId.is_in(ids.iter().copied()))
        .filter(campaign_member::Column::InHoldout.eq(true))
        .filter(campaign_member::Column::Consented.eq(true))
        .group_by(campaign_member::Column::CampaignId)
        .into_tuple()
        .all(db)
        .await?;
    let held: HashMap<Uuid, (i64, Option<i64>)> = holdout_rows.into_iter().map(|(id, n, c)| (id, (n, c))).collect();

    Ok(campaigns
        .iter()
        .map(|c| {
            let (_, n, delivered, opened, converted) =
                deliveries.get(&c.id).copied().unwrap_or((c.id, 0, None, None, None));
            let (eligible, held_converted) = held.get(&c.id).copied().unwrap_or((0, None));
            let stats = CampaignStats {
                targeted: aggregate::count(c.targeted),
                holdout: aggregate::count(c.holdout),
                skipped_no_consent: aggregate::count(c.skipped_no_consent),
                deliveries: aggregate::count(n),
                delivered: delivered.map_or(0, aggregate::count),
                opened: opened.map_or(0, aggregate::count),
                converted: converted.map_or(0, aggregate::count),
                holdout_eligible: aggregate::count(eligible),
                holdout_converted: held_converted.map_or(0, aggregate::count),
            };
            (c.id, stats)
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Deliveries

fn time_keyset(direction: SortDirection) -> Keyset {
    Keyset::new(Expr::col(campaign_delivery::Column::CreatedAt), Expr::col(campaign_delivery::Column::Id), direction)
}

fn delivery_cursor(m: &campaign_delivery::Model) -> Cursor {
    Cursor::new(SortValue::Time(m.created_at), m.id)
}

/// The patron's in-app messages, newest first.
pub async fn inbox(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    window: &PageWindow,
) -> AppResult<Page<campaign_delivery::Model>> {
    let me = inbox_owner(viewer)?;
    window.time_position()?;
    let select = campaign_delivery::Entity::find()
        .filter(campaign_delivery::Column::PatronId.eq(me))
        .filter(campaign_delivery::Column::Channel.eq(CampaignChannel::InApp))
        .filter(campaign_delivery::Column::DeliveredAt.is_not_null());
    time_keyset(SortDirection::Desc).fetch(db, select, window, delivery_cursor).await
}

/// Deliveries over `channel` that no partner tool has reported delivered yet, oldest first.
/// Deliveries of erased patrons are never pending.
pub async fn pending(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    channel: CampaignChannel,
    window: &PageWindow,
) -> AppResult<Page<campaign_delivery::Model>> {
    check_read(viewer)?;
    window.time_position()?;
    let select = campaign_delivery::Entity::find()
        .filter(campaign_delivery::Column::Channel.eq(channel))
        .filter(campaign_delivery::Column::DeliveredAt.is_null())
        .filter(campaign_delivery::Column::PatronId.is_not_null());
    time_keyset(SortDirection::Asc).fetch(db, select, window, delivery_cursor).await
}

/// Deliveries by id, for loaders (the caller checks access).
pub async fn deliveries_by_ids(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<campaign_delivery::Model>> {
    Ok(campaign_delivery::Entity::find()
        .filter(campaign_delivery::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?)
}

fn check_mark_ids(ids: &[Uuid]) -> AppResult<()> {
    if ids.is_empty() {
        return Err(AppError::bad_field("ids", "give at least one delivery id"));
    }
    if ids.len() > MAX_MARK_IDS {
        return Err(AppError::bad_field("ids", format!("give at most {MAX_MARK_IDS} delivery ids")));
    }
    Ok(())
}

/// Set `delivered_at` (and the conversion deadline) on those of `ids` not delivered yet; one
/// statement per campaign involved. Returns how many changed.
async fn deliver(db: &impl ConnectionTrait, ids: &[Uuid], now: DateTime<Utc>) -> AppResult<u64> {
    let undelivered = || {
        Condition::all()
            .add(campaign_delivery::Column::Id.is_in(ids.iter().copied()))
            .add(campaign_delivery::Column::DeliveredAt.is_null())
    };
    let campaign_ids: Vec<Uuid> = campaign_delivery::Entity::find()
        .select_only()
        .column(campaign_delivery::Column::CampaignId)
        .distinct()
        .filter(undelivered())
        .into_tuple()
        .all(db)
        .await?;
    let windows: HashMap<Uuid, Duration> =
        by_ids(db, &campaign_ids).await?.iter().map(|c| (c.id, window_days(c))).collect();
    let mut changed = 0;
    for (campaign_id, window) in windows {
        let result = campaign_delivery::Entity::update_many()
            .col_expr(campaign_delivery::Column::DeliveredAt, Expr::value(now))
            .col_expr(campaign_delivery::Column::ConversionEndsAt, Expr::value(now + window))
            .filter(undelivered())
            .filter(campaign_delivery::Column::CampaignId.eq(campaign_id))
            .exec(db)
            .await?;
        changed += result.rows_affected;
    }
    Ok(changed)
}

/// Report deliveries sent (partner tools). Idempotent: already delivered ones keep their time;
/// unknown ids are ignored. Returns how many changed.
pub async fn mark_delivered<C>(db: &C, viewer: &Viewer, ids: &[Uuid]) -> AppResult<u64>
where
    C: ConnectionTrait + TransactionTrait,
{
    check_write(viewer)?;
    check_mark_ids(ids)?;
    let txn = db.begin().await?;
    let changed = deliver(&txn, ids, Utc::now().trunc_subsecs(6)).await?;
    txn.commit().await?;
    Ok(changed)
}

async fn open(db: &impl ConnectionTrait, ids: &[Uuid], now: DateTime<Utc>) -> AppResult<u64> {
    // An opened message was delivered, whether or not the sender said so.
    deliver(db, ids, now).await?;
    let result = campaign_delivery::Entity::update_many()
        .col_expr(campaign_delivery::Column::OpenedAt, Expr::value(now))
        .filter(campaign_delivery::Column::Id.is_in(ids.iter().copied()))
        .filter(campaign_delivery::Column::OpenedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Report deliveries opened (partner tools); opening implies delivery. Idempotent. Returns how
/// many were newly opened.
pub async fn mark_opened<C>(db: &C, viewer: &Viewer, ids: &[Uuid]) -> AppResult<u64>
where
    C: ConnectionTrait + TransactionTrait,
{
    check_write(viewer)?;
    check_mark_ids(ids)?;
    let txn = db.begin().await?;
    let changed = open(&txn, ids, Utc::now().trunc_subsecs(6)).await?;
    txn.commit().await?;
    Ok(changed)
}

/// The patron marks one of their in-app messages read (opened). Idempotent.
pub async fn mark_inbox_read<C>(db: &C, viewer: &Viewer, id: Uuid) -> AppResult<campaign_delivery::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    let me = inbox_owner(viewer)?;
    let txn = db.begin().await?;
    let found = campaign_delivery::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .filter(|d| d.channel == CampaignChannel::InApp && d.delivered_at.is_some())
        .ok_or_else(|| AppError::not_found("message"))?;
    if found.patron_id != Some(me) {
        return Err(viewer.denied("read another patron's messages"));
    }
    open(&txn, &[id], Utc::now().trunc_subsecs(6)).await?;
    let updated =
        campaign_delivery::Entity::find_by_id(id).one(&txn).await?.ok_or_else(|| AppError::not_found("message"))?;
    txn.commit().await?;
    Ok(updated)
}

// ---------------------------------------------------------------------------------------------
// Privacy

/// Erasure: the patron's memberships and deliveries lose the patron link (the campaign's counts
/// stay; their conversions can no longer be attributed). Returns how many rows changed.
pub async fn anonymise_patron(db: &impl ConnectionTrait, patron_id: Uuid) -> AppResult<u64> {
    let members = campaign_member::Entity::update_many()
        .col_expr(campaign_member::Column::PatronId, Expr::value(Option::<Uuid>::None))
        .filter(campaign_member::Column::PatronId.eq(patron_id))
        .exec(db)
        .await?;
    let deliveries = campaign_delivery::Entity::update_many()
        .col_expr(campaign_delivery::Column::PatronId, Expr::value(Option::<Uuid>::None))
        .filter(campaign_delivery::Column::PatronId.eq(patron_id))
        .exec(db)
        .await?;
    Ok(members.rows_affected + deliveries.rows_affected)
}

/// For the export: each campaign the patron was a member of, with the group, and the delivery
/// they got, if any.
pub async fn export_for(db: &impl ConnectionTrait, patron_id: Uuid) -> AppResult<serde_json::Value> {
    let members = campaign_member::Entity::find()
        .filter(campaign_member::Column::PatronId.eq(patron_id))
        .order_by_asc(campaign_member::Column::CreatedAt)
        .order_by_asc(campaign_member::Column::Id)
        .all(db)
        .await?;
    let deliveries: HashMap<Uuid, campaign_delivery::Model> = campaign_delivery::Entity::find()
        .filter(campaign_delivery::Column::PatronId.eq(patron_id))
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.campaign_id, d))
        .collect();
    let campaign_ids: Vec<Uuid> = members.iter().map(|m| m.campaign_id).collect();
    let campaigns: HashMap<Uuid, campaign::Model> =
        by_ids(db, &campaign_ids).await?.into_iter().map(|c| (c.id, c)).collect();
    let out: Vec<serde_json::Value> = members
        .iter()
        .map(|m| {
            let c = campaigns.get(&m.campaign_id);
            let d = deliveries.get(&m.campaign_id);
            serde_json::json!({
                "campaignId": m.campaign_id,
                "campaign": c.map(|c| c.name.clone()),
                "channel": c.map(|c| c.channel.as_str()),
                "message": d.and(c).map(|c| c.message.clone()),
                "group": if m.in_holdout { "HOLDOUT" } else { "TREATMENT" },
                "consentedAtLaunch": m.consented,
                "addedAt": m.created_at,
                "delivery": d.map(|d| serde_json::json!({
                    "id": d.id,
                    "deliveredAt": d.delivered_at,
                    "openedAt": d.opened_at,
                })),
            })
        })
        .collect();
    Ok(serde_json::Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Principal, Scope};

    fn stats(n1: u64, c1: u64, n0: u64, c0: u64) -> CampaignStats {
        CampaignStats {
            targeted: n1,
            holdout: n0,
            skipped_no_consent: 0,
            deliveries: n1,
            delivered: n1,
            opened: 0,
            converted: c1,
            holdout_eligible: n0,
            holdout_converted: c0,
        }
    }

    #[test]
    fn the_holdout_is_reproducible_and_near_its_share() {
        let campaign = Uuid::now_v7();
        let patrons: Vec<Uuid> = (0..4_000).map(|_| Uuid::new_v4()).collect();
        let held = patrons.iter().filter(|p| in_holdout(campaign, **p, 20)).count();
        assert!((600..1_000).contains(&held), "{held} of 4000 in a 20% holdout");
        assert!(patrons.iter().all(|p| in_holdout(campaign, *p, 20) == in_holdout(campaign, *p, 20)));
        assert!(patrons.iter().all(|p| !in_holdout(campaign, *p, 0)));
        // A larger share keeps everyone already held out.
        assert!(patrons.iter().filter(|p| in_holdout(campaign, **p, 10)).all(|p| in_holdout(campaign, *p, 20)));
    }

    #[test]
    fn the_lift_interval_is_the_wald_interval() {
        let s = stats(100, 40, 100, 10);
        assert_eq!(s.lift().map(|l| (l * 100.0).round()), Some(30.0));
        let ci = s.lift_interval().unwrap_or(Interval { low: 0.0, high: 0.0 });
        // se = sqrt(.4*.6/100 + .1*.9/100) = 0.05745
        assert!((ci.low - (0.30 - 1.96 * 0.057_45)).abs() < 1e-3, "{ci:?}");
        assert!(ci.low > 0.0);
        let none = stats(100, 20, 100, 20);
        let ci = none.lift_interval().unwrap_or(Interval { low: 1.0, high: 1.0 });
        assert!(ci.low < 0.0 && ci.high > 0.0);
        assert_eq!(stats(0, 0, 10, 1).lift(), None);
        assert_eq!(stats(10, 1, 0, 0).lift_interval(), None);
    }

    #[test]
    fn patrons_read_only_their_own_deliveries() {
        let me = Uuid::now_v7();
        let delivery = campaign_delivery::Model {
            id: Uuid::now_v7(),
            campaign_id: Uuid::now_v7(),
            patron_id: Some(me),
            channel: CampaignChannel::InApp,
            created_at: Utc::now(),
            delivered_at: None,
            conversion_ends_at: None,
            opened_at: None,
        };
        assert!(check_read_delivery(&Viewer::new(Principal::Patron { patron_id: me }), &delivery).is_ok());
        let other = Viewer::new(Principal::Patron { patron_id: Uuid::now_v7() });
        assert!(matches!(check_read_delivery(&other, &delivery), Err(AppError::Forbidden(_))));
        let reader = Viewer::new(Principal::Partner { client_id: "p".into(), scopes: [Scope::CampaignsRead].into() });
        assert!(check_read_delivery(&reader, &delivery).is_ok());
        assert!(check_write(&reader).is_err());
        assert!(matches!(inbox_owner(&reader), Err(AppError::Forbidden(_))));
        assert!(matches!(inbox_owner(&Viewer::anonymous()), Err(AppError::Unauthenticated(_))));
    }
}
