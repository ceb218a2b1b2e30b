//! This replica's own record of when it last handed over a message of each sender. The store
//! plans the slots; this keeps a hand-over that starts late (a slow claim, a busy CPU) from
//! bunching up with the next one this replica holds: each starts at its slot or one interval
//! after the previous one, whichever is later.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct LocalPacing {
    /// Start (unix µs) of the latest hand-over planned, by sender.
    last_start: Mutex<HashMap<String, i64>>,
}

impl LocalPacing {
    /// When the hand-over planned for `slot_us` may start.
    pub fn start_at(&self, sender: &str, slot_us: i64, interval_us: i64) -> i64 {
        let mut last = self.last_start.lock().unwrap_or_else(|e| e.into_inner());
        let start = match last.get(sender) {
            Some(previous) => slot_us.max(previous + interval_us),
            None => slot_us,
        };
        last.insert(sender.to_owned(), start);
        start
    }

    /// The hand-over planned at `planned_us` started at `started_us` (later): the next one
    /// keeps its distance from the real start.
    pub fn started(&self, sender: &str, planned_us: i64, started_us: i64) {
        let mut last = self.last_start.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(latest) = last.get_mut(sender) {
            if *latest == planned_us {
                *latest = started_us;
            } else {
                // A later hand-over is already planned: keep it at least one real gap away.
                *latest = (*latest).max(started_us);
            }
        }
    }
}

impl LocalPacing {
    /// Drops the records of hand-overs that started before `before_us` (kept per recipient,
    /// they would otherwise grow with every recipient ever served).
    pub fn forget_before(&self, before_us: i64) {
        let mut last = self.last_start.lock().unwrap_or_else(|e| e.into_inner());
        last.retain(|_, start| *start >= before_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_records_are_forgotten() {
        let pacing = LocalPacing::default();
        pacing.start_at("+1 +2", 1_000, 400);
        pacing.start_at("+1 +3", 5_000, 400);
        pacing.forget_before(2_000);
        // +2 is free again; +3 still keeps its gap.
        assert_eq!(pacing.start_at("+1 +2", 1_100, 400), 1_100);
        assert_eq!(pacing.start_at("+1 +3", 5_100, 400), 5_400);
    }

    #[test]
    fn a_late_start_pushes_the_next_hand_over_back() {
        let pacing = LocalPacing::default();
        assert_eq!(pacing.start_at("+1", 1_000, 100), 1_000);
        // Started 50 µs late.
        pacing.started("+1", 1_000, 1_050);
        assert_eq!(pacing.start_at("+1", 1_100, 100), 1_150);
        assert_eq!(pacing.start_at("+1", 1_300, 100), 1_300);
        // Another sender is its own.
        assert_eq!(pacing.start_at("+2", 1_000, 100), 1_000);
    }

    #[test]
    fn slots_planned_close_together_are_spread_one_interval_apart() {
        let pacing = LocalPacing::default();
        assert_eq!(pacing.start_at("+1", 1_000, 100), 1_000);
        assert_eq!(pacing.start_at("+1", 1_000, 100), 1_100);
        assert_eq!(pacing.start_at("+1", 1_050, 100), 1_200);
    }
}
