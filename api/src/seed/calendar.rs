//! The demo's time frame and its rhythms: busy academic terms and quiet summers and holidays,
//! busier weekdays in the buildings, evenings and Sundays online, opening hours.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use entity::enums::{Channel, PatronType};
use rand::Rng;

use super::rng::{DemoRng, weighted_index};

/// The history covers the `days` whole UTC days before `anchor` (a midnight). Day `d` is
/// `[start + d days, start + d + 1 days)`.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub anchor: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub days: i64,
}

impl Frame {
    pub fn new(anchor: DateTime<Utc>, days: i64) -> Self {
        let anchor = midnight(anchor);
        let days = days.max(1);
        Self { anchor, start: anchor - Duration::days(days), days }
    }

    /// Midnight at the start of day `d` (which may lie outside the history).
    pub fn day_start(&self, d: i64) -> DateTime<Utc> {
        self.start + Duration::days(d)
    }

    pub fn date(&self, d: i64) -> NaiveDate {
        self.day_start(d).date_naive()
    }

    /// A moment at most `at`, and never after the anchor.
    pub fn clamp(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        at.min(self.anchor)
    }
}

/// The start of the UTC day of `at`.
pub fn midnight(at: DateTime<Utc>) -> DateTime<Utc> {
    at.date_naive().and_hms_opt(0, 0, 0).map_or(at, |t| t.and_utc())
}

/// How a patron's use is shaped in time.
#[derive(Debug, Clone, Copy)]
pub struct Rhythm {
    pub in_person: bool,
    /// 1 follows the academic year fully, 0 ignores it, negative inverts it (summer reading).
    pub season_strength: f64,
    /// Families and the public come on Saturdays; students on weekdays.
    pub community: bool,
}

impl Rhythm {
    pub fn new(patron_type: PatronType, channel: Channel) -> Self {
        let season_strength = match patron_type {
            PatronType::OnCampusStudent => 1.0,
            PatronType::OnlineLearner => 0.9,
            PatronType::Faculty => 0.7,
            PatronType::StaffMember => 0.4,
            PatronType::Alumni => 0.2,
            PatronType::Public => 0.15,
            PatronType::Child => -0.5,
        };
        Self {
            in_person: channel == Channel::InPerson,
            season_strength,
            community: matches!(patron_type, PatronType::Public | PatronType::Child),
        }
    }
}

/// Per-day factors of the frame, computed once.
pub struct Calendar {
    academic: Vec<f64>,
    weekday: Vec<Weekday>,
    closed: Vec<bool>,
}

/// Upper bound of [`Calendar::weight`], for rejection sampling.
const MAX_WEIGHT: f64 = 2.0;

impl Calendar {
    pub fn new(frame: &Frame) -> Self {
        let mut academic = Vec::with_capacity(frame.days as usize);
        let mut weekday = Vec::with_capacity(frame.days as usize);
        let mut closed = Vec::with_capacity(frame.days as usize);
        for d in 0..frame.days {
            let date = frame.date(d);
            academic.push(academic_factor(date));
            weekday.push(date.weekday());
            closed.push(matches!((date.month(), date.day()), (12, 24..=31) | (1, 1)));
        }
        Self { academic, weekday, closed }
    }

    pub fn weekday(&self, d: i64) -> Weekday {
        usize::try_from(d).ok().and_then(|i| self.weekday.get(i)).copied().unwrap_or(Weekday::Mon)
    }

    /// Relative activity on day `d` (0.03 ..= [`MAX_WEIGHT`]).
    pub fn weight(&self, d: i64, rhythm: Rhythm) -> f64 {
        let Some(i) = usize::try_from(d).ok().filter(|i| *i < self.academic.len()) else {
            return 0.0;
        };
        let academic = self.academic.get(i).copied().unwrap_or(1.0);
        let season = (1.0 + rhythm.season_strength * (academic - 1.0)).max(0.05);
        let week = weekday_factor(self.weekday(d), rhythm);
        let open = if rhythm.in_person && self.closed.get(i).copied().unwrap_or(false) { 0.03 } else { 1.0 };
        (season * week * open).min(MAX_WEIGHT)
    }

    /// A day in `[lo, hi)` drawn by the rhythm; on `only` weekdays when given (scheduled sessions).
    pub fn sample_day(&self, rng: &mut DemoRng, lo: i64, hi: i64, rhythm: Rhythm, only: Option<&[Weekday]>) -> i64 {
        if hi <= lo + 1 {
            return lo;
        }
        let mut candidate = lo;
        for _ in 0..64 {
            candidate = rng.random_range(lo..hi);
            if let Some(days) = only {
                match self.snap(candidate, lo, hi, days) {
                    Some(d) => candidate = d,
                    None => return candidate,
                }
            }
            if rng.random::<f64>() * MAX_WEIGHT < self.weight(candidate, rhythm) {
                return candidate;
            }
        }
        candidate
    }

    /// The nearest day at or after `d` (or else before it) inside `[lo, hi)` on one of `days`.
    fn snap(&self, d: i64, lo: i64, hi: i64, days: &[Weekday]) -> Option<i64> {
        (0..7)
            .map(|k| d + k)
            .find(|x| *x < hi && days.contains(&self.weekday(*x)))
            .or_else(|| (1..7).map(|k| d - k).find(|x| *x >= lo && days.contains(&self.weekday(*x))))
    }
}

/// Term-time highs (Sep–Nov, Feb–Apr), summer and late-December lows.
fn academic_factor(date: NaiveDate) -> f64 {
    match (date.month(), date.day()) {
        (1, 1..=14) => 0.55,
        (1, _) => 1.05,
        (2, _) => 1.25,
        (3, _) => 1.3,
        (4, _) => 1.25,
        (5, _) => 0.85,
        (6, _) => 0.55,
        (7, _) => 0.45,
        (8, 1..=20) => 0.55,
        (8, _) => 0.9,
        (9, _) => 1.3,
        (10, _) => 1.35,
        (11, _) => 1.3,
        (12, 1..=12) => 1.1,
        _ => 0.35,
    }
}

fn weekday_factor(day: Weekday, rhythm: Rhythm) -> f64 {
    use Weekday::{Fri, Mon, Sat, Sun, Thu, Tue, Wed};
    match (rhythm.in_person, rhythm.community, day) {
        (true, false, Mon) => 1.15,
        (true, false, Tue | Wed) => 1.2,
        (true, false, Thu) => 1.1,
        (true, false, Fri) => 0.9,
        (true, false, Sat) => 0.45,
        (true, false, Sun) => 0.3,
        (true, true, Mon) => 0.9,
        (true, true, Tue | Thu) => 1.0,
        (true, true, Wed) => 1.05,
        (true, true, Fri) => 0.95,
        (true, true, Sat) => 1.35,
        (true, true, Sun) => 0.6,
        (false, _, Mon | Tue) => 1.1,
        (false, _, Wed) => 1.05,
        (false, _, Thu) => 1.0,
        (false, _, Fri) => 0.85,
        (false, _, Sat) => 0.8,
        (false, _, Sun) => 1.0,
    }
}

/// Hour weights (0..24) for when something happens over `channel`.
fn hour_weights(channel: Channel, weekend: bool) -> [f64; 24] {
    const IN_PERSON_WEEKDAY: [f64; 24] = [
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.4, 0.8, 1.2, 1.4, 1.3, 1.4, 1.5, 1.3, 1.1, 0.8, 0.6, 0.5, 0.3, 0.0,
        0.0, 0.0,
    ];
    const IN_PERSON_WEEKEND: [f64; 24] = [
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9, 1.2, 1.3, 1.2, 1.1, 1.0, 0.7, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0, 0.0,
    ];
    const ONLINE: [f64; 24] = [
        0.35, 0.2, 0.1, 0.06, 0.05, 0.08, 0.2, 0.4, 0.7, 0.9, 1.0, 1.05, 0.95, 1.0, 1.05, 1.0, 0.95, 0.9, 1.0, 1.2,
        1.35, 1.3, 1.0, 0.6,
    ];
    const STAFFED_REMOTE: [f64; 24] = [
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.9, 1.1, 1.2, 1.0, 1.1, 1.2, 1.2, 1.1, 0.9, 0.8, 0.9, 0.9, 0.6,
        0.0, 0.0,
    ];
    const OFFICE: [f64; 24] = [
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.8, 1.1, 1.2, 0.8, 1.0, 1.2, 1.1, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0, 0.0,
    ];
    match channel {
        Channel::InPerson if weekend => IN_PERSON_WEEKEND,
        Channel::InPerson => IN_PERSON_WEEKDAY,
        Channel::Chat | Channel::Sms => STAFFED_REMOTE,
        Channel::Phone => OFFICE,
        Channel::Web | Channel::MobileApp | Channel::EmbeddedCourse | Channel::Email => ONLINE,
    }
}

/// Seconds after midnight at which something happens on day `d` over `channel`: within opening
/// or staffed hours, or at a scheduled session's start.
pub fn time_of_day(rng: &mut DemoRng, weekday: Weekday, channel: Channel, session: Option<(u32, u32)>) -> i64 {
    if let Some((hour, minute)) = session {
        // Arrivals and log-ins cluster around the start.
        let start = i64::from(hour) * 3600 + i64::from(minute) * 60;
        return (start + rng.random_range(-600..300)).clamp(0, 86_399);
    }
    let weekend = matches!(weekday, Weekday::Sat | Weekday::Sun);
    let weights = hour_weights(channel, weekend);
    let hour = weighted_index(rng, &weights).unwrap_or(12) as i64;
    hour * 3600 + rng.random_range(0..3600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::rng::{Part, stream};

    #[test]
    fn terms_are_busier_than_summer() {
        let anchor = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").map(|t| t.to_utc()).unwrap_or_default();
        let frame = Frame::new(anchor, 730);
        let calendar = Calendar::new(&frame);
        let rhythm = Rhythm::new(PatronType::OnCampusStudent, Channel::InPerson);
        let mut rng = stream(1, Part::Activity, 0);
        let mut by_month = [0u32; 13];
        for _ in 0..20_000 {
            let d = calendar.sample_day(&mut rng, 0, frame.days, rhythm, None);
            by_month[frame.date(d).month() as usize] += 1;
        }
        assert!(by_month[10] > 2 * by_month[7], "{by_month:?}");
        let sat = calendar.sample_day(&mut rng, 0, frame.days, rhythm, Some(&[Weekday::Sat]));
        assert_eq!(calendar.weekday(sat), Weekday::Sat);
        let t = time_of_day(&mut rng, Weekday::Sun, Channel::InPerson, None);
        assert!((10 * 3600..17 * 3600).contains(&t));
    }
}
