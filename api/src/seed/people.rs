//! Demo patrons: who they are (type, branch, name, contact, tags), when they joined, how active
//! they are and over which days, and what they consented to.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::{
    consent_event,
    enums::{ConsentPurpose, ConsentSource, PatronStatus, PatronType},
    patron,
};
use rand::Rng;
use uuid::Uuid;

use super::{
    calendar::Frame,
    catalog::{self, HEALTH, LAW, MAIN, ONLINE, SCIENCE},
    names,
    rng::{DemoRng, Part, choose, normal, pick, stream, uuid_at},
};

/// Card number of the showcase patron (index 0): an active online learner with a rich history
/// and personalisation consent, used for the demo PATRON token.
pub const SHOWCASE_CARD: &str = "D-000001";

/// Consent wording version recorded on demo consent events.
pub const CONSENT_TEXT_VERSION: &str = "2025-01";

use PatronType::{Alumni, Child, Faculty, OnCampusStudent, OnlineLearner, Public, StaffMember};

const TYPE_SHARES: &[(PatronType, f64)] = &[
    (OnlineLearner, 0.30),
    (OnCampusStudent, 0.35),
    (Faculty, 0.08),
    (StaffMember, 0.06),
    (Public, 0.11),
    (Alumni, 0.06),
    (Child, 0.04),
];

/// Everything about one patron the rest of the generator needs; the rows themselves are
/// taken out (`take_rows`) once written.
pub struct PatronPlan {
    pub index: usize,
    /// `None` for an erased patron: its history is anonymised.
    pub link: Option<Uuid>,
    pub patron_type: PatronType,
    pub home_branch: &'static str,
    pub tags: Vec<&'static str>,
    pub persona: usize,
    /// Days `[first_day, end_day)` in which it may have interactions.
    pub first_day: i64,
    pub end_day: i64,
    /// Expected share of activity (intensity × length of its active span); 0 = never engaged.
    pub weight: f64,
    pub row: Option<patron::Model>,
    pub consents: Vec<consent_event::Model>,
}

/// Days in `[lo, hi]`, or `lo` when the range is empty.
fn between(rng: &mut DemoRng, lo: i64, hi: i64) -> i64 {
    if hi <= lo { lo } else { rng.random_range(lo..=hi) }
}

fn home_branch(rng: &mut DemoRng, patron_type: PatronType) -> &'static str {
    let options: &[(&'static str, f64)] = match patron_type {
        OnlineLearner => &[(ONLINE, 1.0)],
        OnCampusStudent => &[(MAIN, 0.5), (SCIENCE, 0.25), (HEALTH, 0.15), (LAW, 0.10)],
        Faculty => &[(MAIN, 0.3), (SCIENCE, 0.3), (HEALTH, 0.25), (LAW, 0.15)],
        StaffMember => &[(MAIN, 0.5), (SCIENCE, 0.2), (HEALTH, 0.2), (LAW, 0.1)],
        Public => &[(MAIN, 0.85), (SCIENCE, 0.1), (HEALTH, 0.05)],
        Alumni => &[(MAIN, 0.7), (ONLINE, 0.3)],
        Child => &[(MAIN, 1.0)],
    };
    pick(rng, options, MAIN)
}

fn draw_tags(rng: &mut DemoRng, patron_type: PatronType) -> Vec<&'static str> {
    let rates: &[(&'static str, f64)] = match patron_type {
        OnlineLearner => &[
            ("distance", 0.55),
            ("part-time", 0.40),
            ("first-generation", 0.18),
            ("international", 0.06),
            ("veteran", 0.05),
            ("accessibility", 0.05),
        ],
        OnCampusStudent => &[
            ("first-generation", 0.16),
            ("international", 0.12),
            ("honours", 0.08),
            ("part-time", 0.10),
            ("veteran", 0.02),
            ("accessibility", 0.05),
        ],
        Faculty => &[("international", 0.05), ("accessibility", 0.03)],
        StaffMember => &[("part-time", 0.15), ("veteran", 0.03), ("accessibility", 0.04)],
        Public => &[("veteran", 0.03), ("accessibility", 0.06)],
        Alumni => &[("veteran", 0.04), ("international", 0.05), ("accessibility", 0.03)],
        Child => &[("accessibility", 0.03)],
    };
    rates.iter().filter(|(_, p)| rng.random_bool(*p)).map(|(t, _)| *t).collect()
}

/// Relative activity of a patron type.
fn type_activity(patron_type: PatronType) -> f64 {
    match patron_type {
        OnlineLearner | OnCampusStudent => 1.2,
        Faculty => 1.0,
        Child => 0.7,
        StaffMember | Public => 0.6,
        Alumni => 0.45,
    }
}

fn email_domain(rng: &mut DemoRng, patron_type: PatronType) -> Option<&'static str> {
    let (has, domain) = match patron_type {
        OnlineLearner | OnCampusStudent => (0.98, "students.example.edu"),
        Faculty | StaffMember => (0.99, "example.edu"),
        Public => (0.82, ""),
        Alumni => (0.88, ""),
        // A carer's address.
        Child => (0.3, ""),
    };
    if !rng.random_bool(has) {
        return None;
    }
    if domain.is_empty() {
        choose(rng, &["example.com", "example.net", "example.org", "mail.example.com"]).copied()
    } else {
        Some(domain)
    }
}

fn phone_rate(patron_type: PatronType) -> f64 {
    match patron_type {
        OnlineLearner => 0.7,
        OnCampusStudent => 0.6,
        Faculty | StaffMember | Alumni => 0.5,
        Public => 0.75,
        Child => 0.6,
    }
}

fn app_rate(patron_type: PatronType) -> f64 {
    match patron_type {
        OnlineLearner => 0.7,
        OnCampusStudent => 0.6,
        Faculty => 0.35,
        StaffMember => 0.4,
        Public => 0.3,
        Alumni => 0.25,
        Child => 0.0,
    }
}

/// Plan patron `index`. `emails` keeps addresses unique across the demo.
pub fn plan_patron(seed: u64, index: usize, frame: &Frame, emails: &mut HashMap<String, u32>) -> PatronPlan {
    let mut rng = stream(seed, Part::Patron, index as u64);
    let showcase = index == 0;
    let days = frame.days;

    let mut patron_type = pick(&mut rng, TYPE_SHARES, OnCampusStudent);
    let (mut first, mut last) = names::full_name(&mut rng);
    let mut home = home_branch(&mut rng, patron_type);
    let mut tags = draw_tags(&mut rng, patron_type);
    let mut persona = pick(&mut rng, catalog::persona_mix(patron_type), 0);

    // When they joined: before the history starts, during it, or in the last weeks.
    let joined = rng.random::<f64>();
    let mut created_day = if joined < 0.55 {
        -between(&mut rng, 1, 1800)
    } else if joined < 0.92 {
        between(&mut rng, 0, days - 90)
    } else {
        days - between(&mut rng, 1, 75.min(days))
    };
    let never_engaged = rng.random_bool(0.10);
    let lifecycle = rng.random::<f64>();
    let mut end_day = if lifecycle < 0.68 {
        days
    } else if lifecycle < 0.78 {
        days - between(&mut rng, 60, 180)
    } else {
        days - between(&mut rng, 185, 700)
    };
    // Lognormal: many light users, a few very heavy ones (capped at ~14 times the median).
    let mut intensity = type_activity(patron_type) * normal(&mut rng, 0.0, 1.15).min(2.3).exp();
    let status_draw = rng.random::<f64>();
    let created_secs = between(&mut rng, 8 * 3600, 18 * 3600);

    if showcase {
        patron_type = OnlineLearner;
        first = "Amara".to_owned();
        last = "Okafor".to_owned();
        home = ONLINE;
        tags = vec!["distance", "part-time"];
        persona = 0;
        created_day = -400;
        end_day = days;
        intensity = type_activity(OnlineLearner) * 6.0;
    }

    let mut first_day = (created_day + 1).max(0);
    let lapsed = end_day < days - 180;
    if end_day - first_day < 14 {
        end_day = days;
    }
    if first_day >= end_day {
        first_day = end_day;
    }
    let engaged = showcase || (!never_engaged && end_day > first_day);
    let weight = if engaged { intensity * (end_day - first_day) as f64 } else { 0.0 };

    let status = if showcase {
        PatronStatus::Active
    } else if engaged && lapsed {
        if status_draw < 0.04 {
            PatronStatus::Erased
        } else if status_draw < 0.44 {
            PatronStatus::Inactive
        } else {
            PatronStatus::Active
        }
    } else if status_draw < 0.04 {
        PatronStatus::Inactive
    } else {
        PatronStatus::Active
    };

    let created_at = frame.day_start(created_day) + Duration::seconds(created_secs);
    let id = uuid_at(&mut rng, created_at);
    let email = email_domain(&mut rng, patron_type).map(|domain| {
        let local = format!("{}.{}", names::email_part(&first), names::email_part(&last));
        let seen = emails.entry(format!("{local}@{domain}")).or_insert(0);
        *seen += 1;
        if *seen == 1 { format!("{local}@{domain}") } else { format!("{local}{seen}@{domain}") }
    });
    let phone = rng
        .random_bool(phone_rate(patron_type))
        .then(|| format!("+1 555 {:03} {:04}", rng.random_range(100..1000), rng.random_range(0..10_000)));
    // When the status last changed, for inactive and erased patrons.
    let changed_at = frame
        .clamp(frame.day_start((end_day + between(&mut rng, 60, 200)).min(days - 1)) + Duration::seconds(created_secs));

    let mut plan = PatronPlan {
        index,
        link: Some(id),
        patron_type,
        home_branch: home,
        tags,
        persona,
        first_day,
        end_day,
        weight,
        row: None,
        consents: Vec::new(),
    };
    let mut row = patron::Model {
        id,
        card_number: Some(card_number(index)),
        name: Some(format!("{first} {last}")),
        email,
        phone,
        patron_type,
        home_branch: Some(home.to_owned()),
        status,
        pin_hash: None,
        erased_at: None,
        created_at,
        updated_at: created_at,
    };
    if status == PatronStatus::Erased {
        // Personal data gone, history kept without the link.
        row.card_number = None;
        row.name = None;
        row.email = None;
        row.phone = None;
        row.home_branch = None;
        row.erased_at = Some(changed_at.max(created_at));
        row.updated_at = changed_at.max(created_at);
        plan.link = None;
        plan.tags.clear();
    } else {
        plan.consents = consents(&mut rng, frame, &row, showcase);
        let last_consent = plan.consents.iter().map(|c| c.created_at).max();
        row.updated_at = last_consent.map_or(created_at, |t| t.max(created_at));
        if status == PatronStatus::Inactive {
            row.updated_at = row.updated_at.max(changed_at);
        }
    }
    plan.row = Some(row);
    plan
}

pub fn card_number(index: usize) -> String {
    format!("D-{:06}", index + 1)
}

/// The consent history of a patron: given or refused per purpose, sometimes withdrawn later.
fn consents(rng: &mut DemoRng, frame: &Frame, patron: &patron::Model, showcase: bool) -> Vec<consent_event::Model> {
    let patron_type = patron.patron_type;
    let has_app = showcase || rng.random_bool(app_rate(patron_type));
    // Consents migrated from the previous system on the day the CRM went live.
    let go_live = frame.start + Duration::hours(26);
    let imported = patron.created_at < go_live && rng.random_bool(0.35);
    let mut out = Vec::new();
    for purpose in ConsentPurpose::ALL {
        let (record, grant) = match (purpose, patron_type) {
            (ConsentPurpose::Personalisation, Child) => (0.3, 0.6),
            (ConsentPurpose::Personalisation, _) => (0.85, 0.78),
            (_, Child) => (0.0, 0.0),
            (ConsentPurpose::MarketingEmail, _) if patron.email.is_some() => (0.7, 0.45),
            (ConsentPurpose::MarketingSms, _) if patron.phone.is_some() => (0.5, 0.22),
            (ConsentPurpose::MarketingPush, _) if has_app => (0.9, 0.5),
            (ConsentPurpose::MarketingInApp, _) if has_app => (0.9, 0.68),
            _ => (0.0, 0.0),
        };
        let forced = showcase && *purpose == ConsentPurpose::Personalisation;
        if !forced && !rng.random_bool(record) {
            continue;
        }
        let granted = forced || rng.random_bool(grant);
        let app_purpose = matches!(purpose, ConsentPurpose::MarketingPush | ConsentPurpose::MarketingInApp);
        let source = if imported && !app_purpose && !forced {
            ConsentSource::Import
        } else if patron_type != Child && has_app && (forced || rng.random_bool(0.8)) {
            ConsentSource::App
        } else {
            ConsentSource::Staff
        };
        let base = patron.created_at.max(frame.start - Duration::days(60));
        let (recorded_at, created_at) = match source {
            ConsentSource::Import => {
                let room = (go_live - patron.created_at).num_seconds().clamp(1, 60 * 86_400);
                let recorded = patron.created_at + Duration::seconds(rng.random_range(0..room));
                (recorded, go_live + Duration::seconds(rng.random_range(0..3600)))
            }
            _ => {
                let room = (frame.anchor - base).num_seconds().clamp(1, 120 * 86_400);
                let recorded = frame.clamp(base + Duration::seconds(rng.random_range(0..room)));
                let lag = if source == ConsentSource::Staff { rng.random_range(0..600) } else { 0 };
                (recorded, frame.clamp(recorded + Duration::seconds(lag)))
            }
        };
        let recorded_at = recorded_at.max(patron.created_at);
        let created_at = created_at.max(recorded_at);
        out.push(event(rng, patron.id, *purpose, granted, source, recorded_at, created_at));
        // Some change their mind later.
        let remaining = (frame.anchor - created_at).num_seconds();
        if granted && !forced && remaining > 8 * 86_400 && rng.random_bool(0.08) {
            let withdrawn = created_at + Duration::seconds(rng.random_range(7 * 86_400..remaining));
            let source = if has_app { ConsentSource::App } else { ConsentSource::Staff };
            out.push(event(rng, patron.id, *purpose, false, source, withdrawn, withdrawn));
        }
    }
    out
}

fn event(
    rng: &mut DemoRng,
    patron_id: Uuid,
    purpose: ConsentPurpose,
    granted: bool,
    source: ConsentSource,
    recorded_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
) -> consent_event::Model {
    consent_event::Model {
        id: uuid_at(rng, created_at),
        patron_id,
        purpose,
        granted,
        source,
        text_version: Some(CONSENT_TEXT_VERSION.to_owned()),
        recorded_at,
        created_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn showcase_patron_is_an_engaged_online_learner_with_consent() {
        let frame = Frame::new(Utc::now(), 730);
        let plan = plan_patron(42, 0, &frame, &mut HashMap::new());
        let row = plan.row.as_ref().map(|r| (r.patron_type, r.status, r.card_number.clone()));
        assert_eq!(row, Some((OnlineLearner, PatronStatus::Active, Some(SHOWCASE_CARD.to_owned()))));
        assert!(plan.weight > 0.0 && plan.end_day == frame.days);
        assert!(plan.consents.iter().any(|c| c.purpose == ConsentPurpose::Personalisation && c.granted));
        assert!(!plan.consents.iter().any(|c| c.purpose == ConsentPurpose::Personalisation && !c.granted));
    }

    #[test]
    fn patrons_are_created_before_they_can_act_and_consent() {
        let frame = Frame::new(Utc::now(), 730);
        let mut emails = HashMap::new();
        for i in 0..500 {
            let plan = plan_patron(7, i, &frame, &mut emails);
            let Some(row) = plan.row.as_ref() else { panic!("row") };
            assert!(row.created_at < frame.day_start(plan.first_day));
            assert!(row.created_at <= row.updated_at && row.updated_at <= frame.anchor);
            for c in &plan.consents {
                assert!(row.created_at <= c.recorded_at && c.recorded_at <= c.created_at, "{c:?}");
                assert!(c.created_at <= frame.anchor);
            }
        }
    }
}
