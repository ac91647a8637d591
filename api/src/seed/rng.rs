//! Deterministic randomness for the demo generator: one ChaCha stream per part and per row
//! owner, so a patron's profile and history depend only on the seed and the patron's index,
//! not on how many rows came before it or how they were batched.

use chrono::{DateTime, Utc};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

pub type DemoRng = ChaCha8Rng;

/// What a stream is for; combined with an index into the stream number.
#[derive(Debug, Clone, Copy)]
pub enum Part {
    Catalog = 1,
    Patron = 2,
    Activity = 3,
    Anonymous = 4,
    Funders = 5,
    Feedback = 6,
}

/// The generator for `part`/`index` under `seed`.
pub fn stream(seed: u64, part: Part, index: u64) -> DemoRng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((part as u64) << 48) | (index & 0xFFFF_FFFF_FFFF));
    rng
}

/// A UUID v7 for a row created at `at`: the timestamp from `at`, the rest from `rng`, so the
/// same seed gives the same ids and ids still sort by time.
pub fn uuid_at(rng: &mut DemoRng, at: DateTime<Utc>) -> Uuid {
    let mut bytes = [0u8; 10];
    rng.fill_bytes(&mut bytes);
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
}

/// An index drawn with probability proportional to `weights`; `None` when no weight is positive.
pub fn weighted_index(rng: &mut DemoRng, weights: &[f64]) -> Option<usize> {
    let total: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
    if total <= 0.0 {
        return None;
    }
    let mut target = rng.random::<f64>() * total;
    let mut last = None;
    for (i, w) in weights.iter().enumerate() {
        if w.is_finite() && *w > 0.0 {
            last = Some(i);
            if target < *w {
                return Some(i);
            }
            target -= *w;
        }
    }
    last
}

/// One item of `items` (pairs of item and weight), or `fallback` when none has weight.
pub fn pick<T: Copy>(rng: &mut DemoRng, items: &[(T, f64)], fallback: T) -> T {
    let weights: Vec<f64> = items.iter().map(|(_, w)| *w).collect();
    weighted_index(rng, &weights).and_then(|i| items.get(i)).map_or(fallback, |(item, _)| *item)
}

/// One element of a non-empty slice, uniformly; `None` for an empty one.
pub fn choose<'a, T>(rng: &mut DemoRng, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() { None } else { items.get(rng.random_range(0..items.len())) }
}

/// A normal variate (Box–Muller).
pub fn normal(rng: &mut DemoRng, mean: f64, sd: f64) -> f64 {
    let u1 = rng.random::<f64>().max(1e-12);
    let u2 = rng.random::<f64>();
    mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a: Vec<u32> = (0..4).map(|_| stream(7, Part::Patron, 3).next_u32()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut x = stream(7, Part::Patron, 3);
        let mut y = stream(7, Part::Patron, 4);
        assert_ne!(x.next_u64(), y.next_u64());
    }

    #[test]
    fn weighted_index_respects_zero_weights() {
        let mut rng = stream(1, Part::Catalog, 0);
        for _ in 0..100 {
            assert_eq!(weighted_index(&mut rng, &[0.0, 2.0, 0.0]), Some(1));
        }
        assert_eq!(weighted_index(&mut rng, &[0.0, 0.0]), None);
        assert_eq!(weighted_index(&mut rng, &[]), None);
    }

    #[test]
    fn ids_carry_the_time() {
        let mut rng = stream(1, Part::Catalog, 0);
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap_or_default();
        let id = uuid_at(&mut rng, at);
        assert_eq!(id.get_version_num(), 7);
        let (secs, nanos) = id.get_timestamp().map(|t| t.to_unix()).unwrap_or_default();
        assert_eq!(secs * 1000 + u64::from(nanos / 1_000_000), 1_700_000_000_123);
    }
}
