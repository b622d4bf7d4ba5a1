//! Admission control: how many requests one agent (or, for anonymous agents, one session) may
//! have in the gateway at once, so that one caller cannot take every upstream connection.

use std::sync::Arc;

use dashmap::DashMap;
use foldhash::fast::RandomState;

pub struct InFlight {
    counts: DashMap<Arc<str>, usize, RandomState>,
    max: usize,
}

/// One admitted request; leaving the gateway (drop) frees its place.
pub struct Admitted<'a> {
    in_flight: &'a InFlight,
    key: Arc<str>,
}

impl InFlight {
    pub fn new(max: usize) -> Self {
        Self {
            counts: DashMap::default(),
            max,
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Requests admitted and not yet answered, all callers together (for the metrics scrape).
    pub fn total(&self) -> usize {
        self.counts.iter().map(|entry| *entry.value()).sum()
    }

    /// Admits one more request for `key`, or `None` when it already has `max` in flight.
    pub fn admit(&self, key: &Arc<str>) -> Option<Admitted<'_>> {
        let mut count = self.counts.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Admitted {
            in_flight: self,
            key: key.clone(),
        })
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        // Entries are removed at zero so that the map holds only callers with requests open.
        self.in_flight.counts.remove_if_mut(&self.key, |_, count| {
            *count -= 1;
            *count == 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_max_and_frees_places_on_drop() {
        let in_flight = InFlight::new(2);
        let key: Arc<str> = "bot".into();
        let a = in_flight.admit(&key).unwrap();
        let _b = in_flight.admit(&key).unwrap();
        assert!(in_flight.admit(&key).is_none());
        assert!(
            in_flight.admit(&"other".into()).is_some(),
            "callers are counted apart"
        );
        drop(a);
        assert!(in_flight.admit(&key).is_some());
    }

    #[test]
    fn forgets_callers_with_nothing_in_flight() {
        let in_flight = InFlight::new(1);
        drop(in_flight.admit(&"bot".into()).unwrap());
        assert!(in_flight.counts.is_empty());
    }
}
