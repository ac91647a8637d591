//! Demo interactions: each patron takes up a few services (mostly from their persona, so
//! services used together really co-occur), then uses them over their active days with the
//! library's weekly and seasonal rhythm; plus anonymous walk-ins.

use chrono::Duration;
use entity::{
    enums::{Channel, InteractionKind, PatronType},
    interaction,
};
use rand::Rng;
use uuid::Uuid;

use super::{
    calendar::{Calendar, Frame, Rhythm, time_of_day},
    catalog::{
        self, BRANCH_BOOSTS, MAIN, Mode, ONLINE, PERSONA_BOOST, PERSONAS, PHYSICAL_BRANCHES, Schedule, ServiceSpec,
        TAG_BOOSTS,
    },
    people::PatronPlan,
    rng::{DemoRng, Part, choose, normal, pick, stream, uuid_at, weighted_index},
    texts,
};

/// Origin system recorded on synced demo rows (loans and e-resource use come from other systems).
pub const DEMO_SOURCE: &str = "demo";

/// Share of all interactions that are anonymous walk-ins.
pub const WALK_IN_SHARE: f64 = 0.012;

/// A service row as written, with the last day it could be used.
pub struct ServiceRef {
    pub spec: &'static ServiceSpec,
    pub id: Uuid,
    /// Exclusive: the day it was retired, or the end of the history.
    pub end_day: i64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ActivityStats {
    pub interactions: u64,
    pub anonymous: u64,
    pub rated: u64,
    pub synced: u64,
}

/// Who an interaction belongs to.
struct Who<'a> {
    link: Option<Uuid>,
    patron_type: PatronType,
    home_branch: &'a str,
    first_day: i64,
    end_day: i64,
    /// Anonymised history: no comment or notes either.
    erased: bool,
}

pub struct Activity<'a> {
    seed: u64,
    frame: &'a Frame,
    calendar: Calendar,
    services: &'a [ServiceRef],
    persona_sets: Vec<Vec<usize>>,
    tag_boosts: Vec<(&'static str, usize, f64)>,
    branch_boosts: Vec<(&'static str, usize, f64)>,
    walk_in_services: Vec<(usize, f64)>,
    pub stats: ActivityStats,
}

/// How likely a patron type is to use a channel at all.
fn channel_factor(patron_type: PatronType, channel: Channel) -> f64 {
    use Channel::{Chat, Email, EmbeddedCourse, InPerson, MobileApp, Phone, Web};
    match (patron_type, channel) {
        (PatronType::OnlineLearner, InPerson) => 0.08,
        (PatronType::OnlineLearner, Phone) => 0.6,
        (PatronType::Child, InPerson) => 1.0,
        (PatronType::Child, MobileApp) => 0.4,
        (PatronType::Child, Web) => 0.3,
        (PatronType::Child, _) => 0.05,
        (PatronType::Alumni, InPerson) => 0.5,
        (PatronType::Faculty, Email) => 1.5,
        (PatronType::Faculty, Chat) => 0.7,
        (PatronType::OnlineLearner, EmbeddedCourse) => 1.0,
        // Faculty co-teach a few online courses; some campus students take one.
        (PatronType::Faculty, EmbeddedCourse) => 0.12,
        (PatronType::OnCampusStudent, EmbeddedCourse) => 0.06,
        (_, EmbeddedCourse) => 0.05,
        _ => 1.0,
    }
}

impl<'a> Activity<'a> {
    pub fn new(seed: u64, frame: &'a Frame, services: &'a [ServiceRef]) -> Self {
        let persona_sets =
            PERSONAS.iter().map(|p| p.services.iter().filter_map(|c| catalog::service_index(c)).collect()).collect();
        let resolve = |list: &[(&'static str, &'static str, f64)]| -> Vec<(&'static str, usize, f64)> {
            list.iter().filter_map(|(key, code, f)| catalog::service_index(code).map(|i| (*key, i, *f))).collect()
        };
        let walk_in_services =
            [("REF-DESK", 0.35), ("PUBLIC-PC", 0.30), ("EVENTS", 0.18), ("STORY-TIME", 0.10), ("MAKER", 0.07)]
                .iter()
                .filter_map(|(code, w)| catalog::service_index(code).map(|i| (i, *w)))
                .collect();
        Self {
            seed,
            frame,
            calendar: Calendar::new(frame),
            services,
            persona_sets,
            tag_boosts: resolve(TAG_BOOSTS),
            branch_boosts: resolve(BRANCH_BOOSTS),
            walk_in_services,
            stats: ActivityStats::default(),
        }
    }

    /// Append `quota` interactions of one patron to `out`.
    pub fn patron_history(&mut self, plan: &PatronPlan, quota: usize, out: &mut Vec<interaction::Model>) {
        if quota == 0 || plan.end_day <= plan.first_day {
            return;
        }
        let mut rng = stream(self.seed, Part::Activity, plan.index as u64);
        let repertoire = self.repertoire(&mut rng, plan, quota);
        let frequencies: Vec<f64> = repertoire
            .iter()
            .enumerate()
            .map(|(rank, s)| {
                let base = self.services.get(*s).map_or(0.0, |r| r.spec.frequency);
                // The first service taken up tends to stay the main one.
                if rank == 0 { base * 1.5 } else { base }
            })
            .collect();
        let who = Who {
            link: plan.link,
            patron_type: plan.patron_type,
            home_branch: plan.home_branch,
            first_day: plan.first_day,
            end_day: plan.end_day,
            erased: plan.link.is_none(),
        };
        for _ in 0..quota {
            let Some(service) = weighted_index(&mut rng, &frequencies).and_then(|i| repertoire.get(i)) else {
                break;
            };
            if let Some(row) = self.touch(&mut rng, *service, &who, None) {
                out.push(row);
            }
        }
    }

    /// Append one anonymous walk-in (no patron, a patron type kept) to `out`.
    pub fn walk_in(&mut self, rng: &mut DemoRng, out: &mut Vec<interaction::Model>) {
        let patron_type = pick(
            rng,
            &[
                (PatronType::Public, 0.70),
                (PatronType::OnCampusStudent, 0.12),
                (PatronType::Alumni, 0.10),
                (PatronType::Child, 0.08),
            ],
            PatronType::Public,
        );
        let options: Vec<(usize, f64)> = self
            .walk_in_services
            .iter()
            .copied()
            .filter(|(i, _)| self.services.get(*i).is_some_and(|s| s.spec.allows(patron_type)))
            .collect();
        let Some(service) = weighted_index(rng, &options.iter().map(|(_, w)| *w).collect::<Vec<_>>())
            .and_then(|i| options.get(i))
            .map(|(s, _)| *s)
        else {
            return;
        };
        let who =
            Who { link: None, patron_type, home_branch: MAIN, first_day: 0, end_day: self.frame.days, erased: false };
        if let Some(row) = self.touch(rng, service, &who, Some(Channel::InPerson)) {
            out.push(row);
        }
    }

    /// The services a patron takes up: more of them the more active they are, drawn by reach,
    /// persona, tags and home branch.
    fn repertoire(&self, rng: &mut DemoRng, plan: &PatronPlan, quota: usize) -> Vec<usize> {
        let persona = self.persona_sets.get(plan.persona);
        let mut weights: Vec<f64> = self
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if !s.spec.allows(plan.patron_type) || s.end_day <= plan.first_day + 1 {
                    return 0.0;
                }
                let mut w = s.spec.reach;
                if persona.is_some_and(|p| p.contains(&i)) {
                    w *= PERSONA_BOOST;
                }
                for (tag, service, factor) in &self.tag_boosts {
                    if *service == i && plan.tags.contains(tag) {
                        w *= factor;
                    }
                }
                for (branch, service, factor) in &self.branch_boosts {
                    if *service == i && plan.home_branch == *branch {
                        w *= factor;
                    }
                }
                // Services only offered over channels this patron hardly uses are rarely taken up.
                let total: f64 = s.spec.modes.iter().map(|m| m.weight).sum();
                let usable: f64 =
                    s.spec.modes.iter().map(|m| m.weight * channel_factor(plan.patron_type, m.channel)).sum();
                if total > 0.0 { w * usable / total } else { 0.0 }
            })
            .collect();
        let breadth = (1.0 + 1.4 * (1.0 + quota as f64).ln()).round() as usize;
        let breadth = breadth.clamp(1, quota.min(12));
        let mut chosen = Vec::with_capacity(breadth);
        while chosen.len() < breadth {
            let Some(i) = weighted_index(rng, &weights) else { break };
            chosen.push(i);
            if let Some(w) = weights.get_mut(i) {
                *w = 0.0;
            }
        }
        if chosen.is_empty() {
            chosen.extend(catalog::service_index("REF-DESK"));
        }
        chosen
    }

    /// One interaction of `who` with service `index`.
    fn touch(
        &mut self,
        rng: &mut DemoRng,
        index: usize,
        who: &Who<'_>,
        only_channel: Option<Channel>,
    ) -> Option<interaction::Model> {
        let service = self.services.get(index)?;
        let spec = service.spec;
        let mode_weights: Vec<f64> = spec
            .modes
            .iter()
            .map(|m| {
                let allowed = only_channel.is_none_or(|c| c == m.channel);
                if allowed { m.weight * channel_factor(who.patron_type, m.channel) } else { 0.0 }
            })
            .collect();
        let mode: Mode = *weighted_index(rng, &mode_weights).and_then(|i| spec.modes.get(i)).or(spec.modes.first())?;

        let hi = who.end_day.min(service.end_day);
        let lo = who.first_day.min(hi - 1).max(0);
        let rhythm = Rhythm::new(who.patron_type, mode.channel);
        let (only_days, session) = match spec.schedule {
            Schedule::Open => (None, None),
            Schedule::Sessions { days, times } => (Some(days), choose(rng, times).copied()),
        };
        let day = self.calendar.sample_day(rng, lo, hi, rhythm, only_days);
        let seconds = time_of_day(rng, self.calendar.weekday(day), mode.channel, session);
        let occurred_at =
            self.frame.day_start(day) + Duration::seconds(seconds) + Duration::milliseconds(rng.random_range(0..1000));

        let branch: Option<&str> = if mode.channel == Channel::InPerson {
            let allowed = if spec.branches.is_empty() { PHYSICAL_BRANCHES } else { spec.branches };
            if allowed.contains(&who.home_branch) && rng.random_bool(0.85) {
                Some(who.home_branch)
            } else if !PHYSICAL_BRANCHES.contains(&who.home_branch) && allowed.contains(&MAIN) {
                Some(MAIN)
            } else {
                choose(rng, allowed).copied()
            }
        } else if mode.staffed {
            Some(ONLINE)
        } else {
            None
        };
        let staff_member = if mode.staffed {
            let team = if spec.staff.is_empty() { catalog::branch_team(branch.unwrap_or(ONLINE)) } else { spec.staff };
            choose(rng, team).map(|s| (*s).to_owned())
        } else {
            None
        };

        let rating = rng.random_bool(spec.rating_rate).then(|| {
            // Mostly positive, with the J-shaped tail of really bad experiences.
            let angry = 0.02 + 0.05 * (-spec.quality).max(0.0);
            if rng.random_bool(angry) {
                if rng.random_bool(0.7) { 1 } else { 2 }
            } else {
                normal(rng, 4.15 + 0.6 * spec.quality, 0.95).round().clamp(1.0, 5.0) as i16
            }
        });
        let comment = match rating {
            Some(r) if !who.erased && rng.random_bool(0.35) => texts::comment(rng, spec, r),
            _ => None,
        };
        let staff_notes = if mode.staffed && !who.erased { texts::staff_note(rng, spec, mode.kind) } else { None };

        // Loans and e-resource use come from other systems; their external ids are numbered
        // when the rows are written, in time order (see `seed::write_batch`).
        let synced = matches!(mode.kind, InteractionKind::EResourceAccess | InteractionKind::Loan);
        let source = synced.then(|| DEMO_SOURCE.to_owned());
        // Synced rows arrive with the nightly import; staff log theirs shortly after.
        let lag = if synced {
            rng.random_range(600..20 * 3600)
        } else if mode.staffed {
            rng.random_range(0..900)
        } else {
            0
        };
        let created_at = self.frame.clamp(occurred_at + Duration::seconds(lag)).max(occurred_at);
        let updated_at = if rating.is_some() {
            self.frame.clamp(occurred_at + Duration::seconds(rng.random_range(3600..72 * 3600))).max(created_at)
        } else {
            created_at
        };

        self.stats.interactions += 1;
        if who.link.is_none() {
            self.stats.anonymous += 1;
        }
        if rating.is_some() {
            self.stats.rated += 1;
        }
        if synced {
            self.stats.synced += 1;
        }
        Some(interaction::Model {
            id: uuid_at(rng, occurred_at),
            patron_id: who.link,
            service_id: service.id,
            patron_type: who.patron_type,
            kind: mode.kind,
            channel: mode.channel,
            occurred_at,
            branch: branch.map(str::to_owned),
            staff_member,
            rating,
            comment,
            staff_notes,
            source,
            external_id: None,
            created_at,
            updated_at,
        })
    }
}

/// Split `total` interactions over patrons in proportion to their weights (largest remainder,
/// so the sum is exact and the split deterministic).
pub fn quotas(weights: &[f64], total: usize) -> Vec<usize> {
    let sum: f64 = weights.iter().filter(|w| **w > 0.0).sum();
    if sum <= 0.0 || total == 0 {
        return vec![0; weights.len()];
    }
    let mut out = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    let mut assigned = 0usize;
    for (i, w) in weights.iter().enumerate() {
        let exact = if *w > 0.0 { total as f64 * w / sum } else { 0.0 };
        let base = exact.floor() as usize;
        assigned += base;
        out.push(base);
        if *w > 0.0 {
            remainders.push((exact - base as f64, i));
        }
    }
    remainders.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    // Each positive weight lost less than one to flooring, so there are enough remainders.
    let left = total.saturating_sub(assigned);
    for (_, i) in remainders.iter().take(left) {
        if let Some(q) = out.get_mut(*i) {
            *q += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_add_up_exactly() {
        let q = quotas(&[1.0, 0.0, 2.5, 0.3, 7.7], 1001);
        assert_eq!(q.iter().sum::<usize>(), 1001);
        assert_eq!(q[1], 0);
        assert!(q[4] > q[2] && q[2] > q[0]);
        assert_eq!(quotas(&[0.0, 0.0], 10), vec![0, 0]);
        assert_eq!(quotas(&[1.0], 0), vec![0]);
    }
}
