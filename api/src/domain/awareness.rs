//! Awareness gaps: the services a segment (patron type) uses least, relative to the library.
//!
//! Over the last [`ACTIVE_DAYS`] days (UTC days, today included), from the `service_patron_day`
//! roll-up:
//! - an **active patron** is one with at least one interaction in the window; the segment's
//!   active patrons are those whose interactions in the window were recorded with that patron
//!   type (the type snapshotted on each interaction, as in funder reports);
//! - **reach** of a service is the share of active patrons who used it in the window, in the
//!   segment and overall;
//! - the **index** is `100 × reach in segment / reach overall` (100: the segment uses it as
//!   much as everybody; 0: nobody in the segment does).
//!
//! Gaps are the active services offered to the segment (empty audience or one naming its type)
//! and used by someone in the window, lowest index first (ties: the
//! larger overall reach first, then the name). Every figure is a SQL aggregate.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate, Utc};
use entity::{enums::PatronType, service};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Statement, Value};
use uuid::Uuid;

use super::{aggregate::count, rollups::ph, stats};
use crate::{
    auth::Viewer,
    error::{AppError, AppResult},
};

/// The window that makes a patron active, in days.
pub const ACTIVE_DAYS: i64 = 365;
/// Most gaps one request may ask for, and the default.
pub const MAX_GAPS: usize = 100;
pub const DEFAULT_GAPS: usize = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct AwarenessGap {
    pub service_id: Uuid,
    /// Active patrons of the segment who used the service in the window.
    pub segment_users: u64,
    /// Active patrons of the segment.
    pub segment_active_patrons: u64,
    /// Active patrons (any type) who used the service in the window.
    pub users: u64,
    /// Active patrons of any type.
    pub active_patrons: u64,
}

impl AwarenessGap {
    pub fn reach_in_segment(&self) -> f64 {
        ratio(self.segment_users, self.segment_active_patrons)
    }

    pub fn reach_overall(&self) -> f64 {
        ratio(self.users, self.active_patrons)
    }

    /// `100 × reach in segment / reach overall`.
    pub fn index(&self) -> f64 {
        let overall = self.reach_overall();
        if overall > 0.0 { 100.0 * self.reach_in_segment() / overall } else { 0.0 }
    }
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// The `first` largest awareness gaps of `patron_type` as of today (staff, admins, partners
/// with `reports:read`). Empty when the segment has no active patron.
pub async fn gaps(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    patron_type: PatronType,
    first: Option<i32>,
) -> AppResult<Vec<AwarenessGap>> {
    stats::check_read(viewer)?;
    let first = match first {
        None => DEFAULT_GAPS,
        Some(n) if n >= 1 && (n as usize) <= MAX_GAPS => n as usize,
        Some(_) => return Err(AppError::bad_field("first", format!("must be between 1 and {MAX_GAPS}"))),
    };
    let since: NaiveDate = Utc::now().date_naive() - Duration::days(ACTIVE_DAYS - 1);
    gaps_since(db, patron_type, since, first).await
}

/// [`gaps`] over the days from `since`, without the access check.
pub async fn gaps_since(
    db: &impl ConnectionTrait,
    patron_type: PatronType,
    since: NaiveDate,
    first: usize,
) -> AppResult<Vec<AwarenessGap>> {
    let backend = db.get_database_backend();
    let values = vec![Value::from(patron_type.as_str().to_owned()), Value::from(since)];
    let (t, d) = (ph(backend, 1), ph(backend, 2));
    let totals = format!(
        "SELECT COUNT(DISTINCT patron_id) AS active, \
         COUNT(DISTINCT CASE WHEN patron_type = {t} THEN patron_id END) AS segment \
         FROM service_patron_day WHERE day >= {d}"
    );
    let Some(row) = db.query_one_raw(Statement::from_sql_and_values(backend, totals, values.clone())).await? else {
        return Ok(Vec::new());
    };
    let active_patrons = count(row.try_get("", "active")?);
    let segment_active_patrons = count(row.try_get("", "segment")?);
    if segment_active_patrons == 0 {
        return Ok(Vec::new());
    }
    let per_service = format!(
        "SELECT service_id AS s, COUNT(DISTINCT patron_id) AS users, \
         COUNT(DISTINCT CASE WHEN patron_type = {t} THEN patron_id END) AS segment \
         FROM service_patron_day WHERE day >= {d} GROUP BY service_id"
    );
    let mut gaps = Vec::new();
    for row in db.query_all_raw(Statement::from_sql_and_values(backend, per_service, values)).await? {
        let service_id: Uuid = row.try_get("", "s")?;
        gaps.push(AwarenessGap {
            service_id,
            segment_users: count(row.try_get("", "segment")?),
            segment_active_patrons,
            users: count(row.try_get("", "users")?),
            active_patrons,
        });
    }
    // Services not offered to the segment are not gaps in its awareness.
    let names: HashMap<Uuid, String> = service::Entity::find()
        .filter(service::Column::Active.eq(true))
        .filter(service::Column::Id.is_in(gaps.iter().map(|g| g.service_id)))
        .all(db)
        .await?
        .into_iter()
        .filter(|s| {
            let audience = s.audience_list();
            audience.is_empty() || audience.contains(&patron_type)
        })
        .map(|s| (s.id, s.name))
        .collect();
    gaps.retain(|g| g.users > 0 && names.contains_key(&g.service_id));
    gaps.sort_by(|a, b| {
        a.index()
            .total_cmp(&b.index())
            .then_with(|| b.users.cmp(&a.users))
            .then_with(|| names.get(&a.service_id).cmp(&names.get(&b.service_id)))
            .then_with(|| a.service_id.cmp(&b.service_id))
    });
    gaps.truncate(first);
    Ok(gaps)
}
