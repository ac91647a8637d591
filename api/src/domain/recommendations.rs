//! Recommendations: active services a patron has not used, ranked by item-to-item co-usage
//! (lift) blended with popularity within the patron's type, each with a reason.
//!
//! # Model
//!
//! Everything comes from the `service_patron_first` roll-up (one row per distinct patron ×
//! service, maintained in the write transaction), aggregated in SQL into a small
//! services × services structure ([`CoUsage`]): per service the patrons who used it (`n_i`),
//! per pair the patrons who used both (`c_ij`), per patron type the patrons with any use and
//! the users of each service. No patron rows are loaded.
//!
//! For a patron who used the services `S` and is of type `t`, a candidate `j` (active, offered
//! to type `t`, not in `S`, used by someone) is ranked by the naive-Bayes log-score
//!
//! `log P(j | t) + Σ_{i∈S} log lift(i, j)`, with `lift(i, j) = P(i | j) / P(i)`,
//!
//! `P(j | t) = (users_t(j) + ½) / (patrons_t + 1)`, `P(i | j) = (c_ij + ½) / (n_j + 1)` and
//! `P(i) = (n_i + ½) / (N + 1)` (`N`: patrons with any use; the ½ keeps unseen pairs from
//! vetoing a service). Popularity within the type is the prior; every service the patron used
//! multiplies it by how much more (or less) likely users of `j` are to use that service too. A
//! type with no recorded use falls back to the whole library. The `score` returned is the
//! softmax of the log-scores over all candidates: an estimate, from 0 to 1, of how likely `j` is
//! the next service the patron takes up.
//!
//! The reason names the used service with the highest lift when it is at least [`REASON_LIFT`]
//! ("often used by people who use X"); otherwise the popularity within the type.
//!
//! # Consent
//!
//! Only a patron with PERSONALISATION consent gets the personalised ranking. Without it the
//! patron gets the ranking for their patron type, computed without reading their history at all
//! (so it may list services they already use): customisation, not personalisation.
//!
//! # Caching
//!
//! The co-usage model is shared (`reco:model`, [`MODEL_TTL`]); a personalised ranking is cached
//! per patron (`reco:<patron id>`, [`PATRON_TTL`]) and deleted by [`invalidate`] whenever an
//! interaction is recorded for the patron or their consent changes. Consent is read on every
//! request, so a withdrawal takes effect at once even if a deletion was lost. Every answer is
//! checked against the services active now, so a deactivated service disappears at once; a new
//! service, or a change of the patron's type, shows once the cached entries expire.
//!
//! A patron's used services are read from their linked interactions (indexed by patron), not
//! from the roll-up: interactions anonymised by the retention policy no longer count as the
//! patron's history.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    time::Duration,
};

use chrono::{DateTime, NaiveDate, Utc};
use entity::{
    enums::{PatronStatus, PatronType},
    interaction, patron, service,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
    sea_query::{Expr, Func},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    aggregate::count,
    consent::{self, ConsentPurpose},
};
use crate::{auth::Viewer, cache::Cache, error::AppResult};

/// Additive smoothing of every estimated probability (chosen with `rapport
/// eval-recommendations` on the demo library; see the README).
pub const SMOOTHING: f64 = 0.5;
/// Lift from which a used service is given as the reason for a recommendation.
pub const REASON_LIFT: f64 = 1.5;
/// Most recommendations one request may ask for (and how many a cached ranking keeps).
pub const MAX_ITEMS: usize = 50;
/// Recommendations returned when `first` is not given.
pub const DEFAULT_ITEMS: usize = 10;
/// How long a patron's personalised ranking is cached (deleted earlier by [`invalidate`]).
pub const PATRON_TTL: Duration = Duration::from_secs(600);
/// How long the shared co-usage model is cached: new co-usage shows within a minute.
pub const MODEL_TTL: Duration = Duration::from_secs(60);
/// Patrons per page of the offline evaluation.
const EVAL_PAGE: u64 = 500;
/// Cut-off of the offline evaluation's hit rate.
pub const EVAL_K: usize = 5;

const MODEL_KEY: &str = "reco:model";

fn patron_key(patron_id: Uuid) -> String {
    format!("reco:{patron_id}")
}

/// Who may read a patron's recommendations: staff and admins any patron, a patron their own.
pub fn check_read(viewer: &Viewer, patron_id: Uuid) -> AppResult<()> {
    if viewer.is_staff() || viewer.patron_id() == Some(patron_id) {
        return Ok(());
    }
    if viewer.patron_id().is_some() {
        return Err(viewer.denied("read another patron's recommendations"));
    }
    Err(viewer.denied("read patron recommendations"))
}

/// Which ranking a patron got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecommendationKind {
    /// From the patron's own history (personalisation consent given).
    Personalised,
    /// The ranking of the patron's type, using no personal history.
    ByPatronType,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub service_id: Uuid,
    pub score: f64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recommendations {
    pub kind: RecommendationKind,
    pub items: Vec<Recommendation>,
}

/// "online learners", as in "popular with online learners".
pub fn patron_type_plural(t: PatronType) -> &'static str {
    match t {
        PatronType::OnlineLearner => "online learners",
        PatronType::OnCampusStudent => "on-campus students",
        PatronType::Faculty => "faculty",
        PatronType::StaffMember => "staff members",
        PatronType::Public => "members of the public",
        PatronType::Alumni => "alumni",
        PatronType::Child => "children",
    }
}

// ---------------------------------------------------------------------------------------------
// The co-usage model

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ServiceStat {
    id: Uuid,
    name: String,
    active: bool,
    /// Patron types it is offered to; empty: everyone.
    audience: Vec<PatronType>,
    /// Distinct patrons who used it.
    users: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TypeStat {
    patron_type: PatronType,
    /// Distinct patrons of this type with any use.
    patrons: u64,
    /// `(service index, distinct patrons of this type who used it)`.
    users: Vec<(usize, u64)>,
}

/// The aggregates behind every ranking (see the module documentation). Its size depends on the
/// number of services only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoUsage {
    services: Vec<ServiceStat>,
    /// `(i, j, patrons who used both)` for `i < j`, indices into `services`.
    pairs: Vec<(usize, usize, u64)>,
    /// Distinct patrons with any use.
    patrons: u64,
    types: Vec<TypeStat>,
}

impl CoUsage {
    /// Aggregates the roll-up in SQL: five grouped statements, whatever the number of patrons.
    pub async fn load(db: &impl ConnectionTrait) -> AppResult<Self> {
        let backend = db.get_database_backend();
        let mut services: Vec<ServiceStat> = service::Entity::find()
            .order_by_asc(service::Column::Id)
            .all(db)
            .await?
            .into_iter()
            .map(|s| ServiceStat { audience: s.audience_list(), id: s.id, name: s.name, active: s.active, users: 0 })
            .collect();
        let index: HashMap<Uuid, usize> = services.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
        let raw = |sql: &str| Statement::from_string(backend, sql.to_owned());

        for row in db
            .query_all_raw(raw("SELECT service_id AS s, COUNT(*) AS n FROM service_patron_first GROUP BY service_id"))
            .await?
        {
            let s: Uuid = row.try_get("", "s")?;
            let n: i64 = row.try_get("", "n")?;
            if let Some(&i) = index.get(&s) {
                services[i].users = count(n);
            }
        }

        let mut pairs = Vec::new();
        for row in db
            .query_all_raw(raw(
                "SELECT a.service_id AS sa, b.service_id AS sb, COUNT(*) AS n FROM service_patron_first a \
                 JOIN service_patron_first b ON b.patron_id = a.patron_id AND b.service_id > a.service_id \
                 GROUP BY a.service_id, b.service_id",
            ))
            .await?
        {
            let a: Uuid = row.try_get("", "sa")?;
            let b: Uuid = row.try_get("", "sb")?;
            let n: i64 = row.try_get("", "n")?;
            if let (Some(&i), Some(&j)) = (index.get(&a), index.get(&b)) {
                pairs.push((i.min(j), i.max(j), count(n)));
            }
        }

        let patrons =
            match db.query_one_raw(raw("SELECT COUNT(DISTINCT patron_id) AS n FROM service_patron_first")).await? {
                Some(row) => count(row.try_get("", "n")?),
                None => 0,
            };

        let mut types: BTreeMap<String, TypeStat> = BTreeMap::new();
        for row in db
            .query_all_raw(raw(
                "SELECT p.patron_type AS t, COUNT(DISTINCT f.patron_id) AS n FROM service_patron_first f \
                 JOIN patron p ON p.id = f.patron_id GROUP BY p.patron_type",
            ))
            .await?
        {
            let t: String = row.try_get("", "t")?;
            let n: i64 = row.try_get("", "n")?;
            if let Some(patron_type) = PatronType::parse(&t) {
                types.insert(t, TypeStat { patron_type, patrons: count(n), users: Vec::new() });
            }
        }
        for row in db
            .query_all_raw(raw(
                "SELECT p.patron_type AS t, f.service_id AS s, COUNT(*) AS n FROM service_patron_first f \
                 JOIN patron p ON p.id = f.patron_id GROUP BY p.patron_type, f.service_id",
            ))
            .await?
        {
            let t: String = row.try_get("", "t")?;
            let s: Uuid = row.try_get("", "s")?;
            let n: i64 = row.try_get("", "n")?;
            if let (Some(stat), Some(&i)) = (types.get_mut(&t), index.get(&s)) {
                stat.users.push((i, count(n)));
            }
        }
        Ok(Self { services, pairs, patrons, types: types.into_values().collect() })
    }

    /// The shared model from the cache, or loaded and cached.
    pub async fn cached(db: &impl ConnectionTrait, cache: &Cache) -> AppResult<Self> {
        if let Some(model) = cache.get_json::<Self>(MODEL_KEY).await {
            return Ok(model);
        }
        let model = Self::load(db).await?;
        cache.set_json(MODEL_KEY, &model, MODEL_TTL).await;
        Ok(model)
    }

    /// The dense form the rankings work on.
    fn matrix(&self) -> Matrix<'_> {
        let n = self.services.len();
        let mut co = vec![0u64; n * n];
        for &(i, j, c) in &self.pairs {
            if i < n && j < n {
                co[i * n + j] = c;
                co[j * n + i] = c;
            }
        }
        let by_type = self
            .types
            .iter()
            .map(|t| {
                let mut users = vec![0u64; n];
                for &(i, c) in &t.users {
                    if let Some(u) = users.get_mut(i) {
                        *u = c;
                    }
                }
                (t.patron_type, (t.patrons, users))
            })
            .collect();
        Matrix {
            model: self,
            n,
            co,
            by_type,
            index: self.services.iter().enumerate().map(|(i, s)| (s.id, i)).collect(),
        }
    }
}

/// One patron left out of the model for the offline evaluation: their use of `service` is
/// subtracted from every count it is part of.
#[derive(Debug, Clone, Copy)]
struct Holdout {
    service: usize,
}

struct Matrix<'a> {
    model: &'a CoUsage,
    n: usize,
    co: Vec<u64>,
    by_type: HashMap<PatronType, (u64, Vec<u64>)>,
    index: HashMap<Uuid, usize>,
}

/// Turns log-scores into shares of 1 (stable: the largest is subtracted first).
fn softmax(items: &mut [Scored]) {
    let max = items.iter().map(|s| s.score).fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = items.iter().map(|s| (s.score - max).exp()).sum();
    for item in items.iter_mut() {
        item.score = (item.score - max).exp() / total;
    }
}

/// A candidate's score and the strongest reason for it.
#[derive(Debug, Clone)]
struct Scored {
    service: usize,
    score: f64,
    because_of: Option<usize>,
}

impl Matrix<'_> {
    fn users(&self, i: usize, holdout: Option<Holdout>) -> u64 {
        let n = self.model.services[i].users;
        if holdout.is_some_and(|h| h.service == i) { n.saturating_sub(1) } else { n }
    }

    /// Co-count of a used service `i` (never the held-out one) and a candidate `j`.
    fn co(&self, i: usize, j: usize, holdout: Option<Holdout>) -> u64 {
        let c = self.co[i * self.n + j];
        if holdout.is_some_and(|h| h.service == j) { c.saturating_sub(1) } else { c }
    }

    /// Log of the popularity of each service within type `t` (smoothed), and the label of the
    /// population; the whole library when the type has no recorded use.
    fn log_prior(&self, t: PatronType, holdout: Option<Holdout>) -> (Vec<f64>, String) {
        let adjust = |i: usize, u: u64| if holdout.is_some_and(|h| h.service == i) { u.saturating_sub(1) } else { u };
        let smoothed =
            |users: u64, population: u64| ((users as f64 + SMOOTHING) / (population as f64 + 2.0 * SMOOTHING)).ln();
        match self.by_type.get(&t) {
            Some((patrons, users)) if *patrons > 0 => (
                users.iter().enumerate().map(|(i, &u)| smoothed(adjust(i, u), *patrons)).collect(),
                format!("Popular with {}", patron_type_plural(t)),
            ),
            _ => (
                (0..self.n).map(|i| smoothed(self.users(i, holdout), self.model.patrons)).collect(),
                "Popular across the library".to_owned(),
            ),
        }
    }

    /// `lift(i, j) = P(i | j) / P(i)`, smoothed.
    fn lift(&self, i: usize, j: usize, holdout: Option<Holdout>) -> f64 {
        let given_j = (self.co(i, j, holdout) as f64 + SMOOTHING) / (self.users(j, holdout) as f64 + 2.0 * SMOOTHING);
        let base = (self.users(i, holdout) as f64 + SMOOTHING) / (self.model.patrons as f64 + 2.0 * SMOOTHING);
        given_j / base
    }

    /// Candidates: active services offered to type `t` and used by someone, not in `exclude`.
    fn candidates<'s>(
        &'s self,
        exclude: &'s [usize],
        t: PatronType,
        holdout: Option<Holdout>,
    ) -> impl Iterator<Item = usize> + 's {
        (0..self.n).filter(move |&j| {
            let s = &self.model.services[j];
            s.active
                && (s.audience.is_empty() || s.audience.contains(&t))
                && !exclude.contains(&j)
                && self.users(j, holdout) > 0
        })
    }

    /// Personalised ranking of the candidates not in `used`.
    fn rank(&self, used: &[usize], t: PatronType, holdout: Option<Holdout>, limit: usize) -> (Vec<Scored>, String) {
        let (prior, label) = self.log_prior(t, holdout);
        let mut out: Vec<Scored> = self
            .candidates(used, t, holdout)
            .map(|j| {
                let mut score = prior[j];
                let mut best: Option<(usize, f64)> = None;
                for &i in used {
                    let lift = self.lift(i, j, holdout);
                    score += lift.ln();
                    if best.is_none_or(|(_, b)| lift > b) {
                        best = Some((i, lift));
                    }
                }
                let because_of = best.filter(|(_, lift)| *lift >= REASON_LIFT).map(|(i, _)| i);
                Scored { service: j, score, because_of }
            })
            .collect();
        softmax(&mut out);
        self.sort(&mut out);
        out.truncate(limit);
        (out, label)
    }

    /// The ranking of type `t` by popularity alone (the same prior), among the candidates not in
    /// `exclude`.
    fn by_type(&self, exclude: &[usize], t: PatronType, limit: usize) -> (Vec<Scored>, String) {
        let (prior, label) = self.log_prior(t, None);
        let mut out: Vec<Scored> = self
            .candidates(exclude, t, None)
            .map(|j| Scored { service: j, score: prior[j], because_of: None })
            .collect();
        softmax(&mut out);
        self.sort(&mut out);
        out.truncate(limit);
        (out, label)
    }

    /// The offline baseline: the services most used within type `t` (unsmoothed), not in
    /// `exclude`.
    fn popular(&self, exclude: &[usize], t: PatronType, holdout: Option<Holdout>, limit: usize) -> Vec<Scored> {
        let Some((_, users)) = self.by_type.get(&t) else { return Vec::new() };
        let users = |j: usize| {
            let u = users[j];
            if holdout.is_some_and(|h| h.service == j) { u.saturating_sub(1) } else { u }
        };
        let mut out: Vec<Scored> = self
            .candidates(exclude, t, holdout)
            .filter(|&j| users(j) > 0)
            .map(|j| Scored { service: j, score: users(j) as f64, because_of: None })
            .collect();
        self.sort(&mut out);
        out.truncate(limit);
        out
    }

    /// Highest score first; ties by name then id, so rankings are stable.
    fn sort(&self, items: &mut [Scored]) {
        let services = &self.model.services;
        items.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| services[a.service].name.cmp(&services[b.service].name))
                .then_with(|| services[a.service].id.cmp(&services[b.service].id))
        });
    }

    fn items(&self, scored: Vec<Scored>, label: &str) -> Vec<Recommendation> {
        scored
            .into_iter()
            .map(|s| Recommendation {
                service_id: self.model.services[s.service].id,
                score: s.score,
                reason: match s.because_of {
                    Some(i) => format!("Often used by people who use {}", self.model.services[i].name),
                    None => label.to_owned(),
                },
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Serving

/// Services the patron used, from their linked interactions (one indexed, grouped statement).
async fn used_services(db: &impl ConnectionTrait, patron_id: Uuid) -> AppResult<Vec<Uuid>> {
    Ok(interaction::Entity::find()
        .select_only()
        .column(interaction::Column::ServiceId)
        .filter(interaction::Column::PatronId.eq(patron_id))
        .group_by(interaction::Column::ServiceId)
        .into_tuple()
        .all(db)
        .await?)
}

/// Drops the services deactivated since the (cached) ranking was computed: one primary-key
/// lookup of at most [`MAX_ITEMS`] ids.
async fn retain_active(db: &impl ConnectionTrait, items: &mut Vec<Recommendation>) -> AppResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    let active: Vec<Uuid> = service::Entity::find()
        .select_only()
        .column(service::Column::Id)
        .filter(service::Column::Id.is_in(items.iter().map(|i| i.service_id)))
        .filter(service::Column::Active.eq(true))
        .into_tuple()
        .all(db)
        .await?;
    items.retain(|i| active.contains(&i.service_id));
    Ok(())
}

/// The recommendations for `patron` (access already checked), at most `first` of them.
pub async fn for_patron(
    db: &impl ConnectionTrait,
    cache: &Cache,
    patron: &patron::Model,
    first: usize,
) -> AppResult<Recommendations> {
    let first = first.min(MAX_ITEMS);
    let personalised = patron.status != PatronStatus::Erased
        && consent::has_consent(db, patron.id, ConsentPurpose::Personalisation).await?;
    let (kind, mut items) = if personalised {
        (RecommendationKind::Personalised, personalised_ranking(db, cache, patron).await?)
    } else {
        let model = CoUsage::cached(db, cache).await?;
        let matrix = model.matrix();
        let (scored, label) = matrix.by_type(&[], patron.patron_type, MAX_ITEMS);
        (RecommendationKind::ByPatronType, matrix.items(scored, &label))
    };
    retain_active(db, &mut items).await?;
    items.truncate(first);
    Ok(Recommendations { kind, items })
}

/// The patron's full personalised ranking, from the cache or computed and cached.
async fn personalised_ranking(
    db: &impl ConnectionTrait,
    cache: &Cache,
    patron: &patron::Model,
) -> AppResult<Vec<Recommendation>> {
    let key = patron_key(patron.id);
    if let Some(items) = cache.get_json::<Vec<Recommendation>>(&key).await {
        return Ok(items);
    }
    let model = CoUsage::cached(db, cache).await?;
    let matrix = model.matrix();
    let used: Vec<usize> =
        used_services(db, patron.id).await?.iter().filter_map(|id| matrix.index.get(id).copied()).collect();
    let (scored, label) = matrix.rank(&used, patron.patron_type, None, MAX_ITEMS);
    let items = matrix.items(scored, &label);
    cache.set_json(&key, &items, PATRON_TTL).await;
    Ok(items)
}

/// Forget the patron's cached ranking: call after recording interactions for the patron or a
/// change of their consent (both already committed).
pub async fn invalidate(cache: &Cache, patron_id: Uuid) {
    cache.delete(&patron_key(patron_id)).await;
}

/// [`invalidate`] for many patrons at once (a bulk sync): one cache round trip.
pub async fn invalidate_many(cache: &Cache, patron_ids: impl IntoIterator<Item = Uuid>) {
    cache.delete_many(patron_ids.into_iter().map(patron_key)).await;
}

// ---------------------------------------------------------------------------------------------
// Offline evaluation

/// Leave-one-out hit rate of the ranking against the popularity baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Evaluation {
    /// Patrons evaluated: at least two services used, the held-out one still active.
    pub patrons: u64,
    /// Patrons with two or more services whose held-out service is no longer active.
    pub skipped_inactive: u64,
    /// Held-out services found in the top [`EVAL_K`] of the co-usage ranking.
    pub hits: u64,
    /// Held-out services found in the top [`EVAL_K`] of the popularity baseline.
    pub baseline_hits: u64,
}

impl Evaluation {
    pub fn hit_rate(&self) -> f64 {
        if self.patrons == 0 { 0.0 } else { self.hits as f64 / self.patrons as f64 }
    }

    pub fn baseline_hit_rate(&self) -> f64 {
        if self.patrons == 0 { 0.0 } else { self.baseline_hits as f64 / self.patrons as f64 }
    }
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "patrons evaluated (2+ services, held-out service active): {}", self.patrons)?;
        writeln!(f, "skipped (held-out service inactive): {}", self.skipped_inactive)?;
        writeln!(
            f,
            "hit-rate@{EVAL_K} co-usage (lift) x type popularity: {:.3} ({} hits)",
            self.hit_rate(),
            self.hits
        )?;
        write!(
            f,
            "hit-rate@{EVAL_K} popularity within type (baseline): {:.3} ({} hits)",
            self.baseline_hit_rate(),
            self.baseline_hits
        )
    }
}

/// `(patron, service, first use)` as selected by [`evaluate`].
type FirstUse = (Uuid, Uuid, DateTime<Utc>);

/// For every patron with at least two services: hold out the service first used most recently
/// (latest first-use day, then highest id), rank with the patron's use of it subtracted from
/// the model, and count whether it is in the top [`EVAL_K`], for the co-usage ranking and for
/// the popularity baseline (most used within the type, excluding the services used).
///
/// Memory stays bounded: the model is services × services, and patrons are read in keyset
/// pages of 500 with their services grouped in SQL.
pub async fn evaluate(db: &impl ConnectionTrait) -> AppResult<Evaluation> {
    let model = CoUsage::load(db).await?;
    let matrix = model.matrix();
    let mut report = Evaluation::default();
    let mut after: Option<Uuid> = None;
    loop {
        let mut page = patron::Entity::find()
            .select_only()
            .column(patron::Column::Id)
            .column(patron::Column::PatronType)
            .order_by_asc(patron::Column::Id)
            .limit(EVAL_PAGE);
        if let Some(id) = after {
            page = page.filter(patron::Column::Id.gt(id));
        }
        let patrons: Vec<(Uuid, PatronType)> = page.into_tuple().all(db).await?;
        let Some(&(last, _)) = patrons.last() else { break };
        after = Some(last);
        let rows: Vec<FirstUse> = interaction::Entity::find()
            .select_only()
            .column(interaction::Column::PatronId)
            .column(interaction::Column::ServiceId)
            .expr(Func::min(Expr::col(interaction::Column::OccurredAt)))
            .filter(interaction::Column::PatronId.is_in(patrons.iter().map(|p| p.0)))
            .group_by(interaction::Column::PatronId)
            .group_by(interaction::Column::ServiceId)
            .into_tuple()
            .all(db)
            .await?;
        let mut sets: HashMap<Uuid, Vec<(NaiveDate, Uuid)>> = HashMap::new();
        for (patron_id, service_id, first) in rows {
            sets.entry(patron_id).or_default().push((first.date_naive(), service_id));
        }
        for (patron_id, patron_type) in &patrons {
            let Some(uses) = sets.get(patron_id) else { continue };
            evaluate_one(&matrix, uses, *patron_type, &mut report);
        }
        if (patrons.len() as u64) < EVAL_PAGE {
            break;
        }
    }
    Ok(report)
}

fn evaluate_one(matrix: &Matrix<'_>, uses: &[(NaiveDate, Uuid)], t: PatronType, report: &mut Evaluation) {
    let mut indexed: Vec<(NaiveDate, Uuid, usize)> =
        uses.iter().filter_map(|(day, id)| matrix.index.get(id).map(|&i| (*day, *id, i))).collect();
    if indexed.len() < 2 {
        return;
    }
    indexed.sort();
    let Some(&(_, _, held)) = indexed.last() else { return };
    if !matrix.model.services[held].active {
        report.skipped_inactive += 1;
        return;
    }
    let rest: Vec<usize> = indexed[..indexed.len() - 1].iter().map(|u| u.2).collect();
    let holdout = Some(Holdout { service: held });
    report.patrons += 1;
    let (ranked, _) = matrix.rank(&rest, t, holdout, EVAL_K);
    if ranked.iter().any(|s| s.service == held) {
        report.hits += 1;
    }
    let baseline = matrix.popular(&rest, t, holdout, EVAL_K);
    if baseline.iter().any(|s| s.service == held) {
        report.baseline_hits += 1;
    }
}
