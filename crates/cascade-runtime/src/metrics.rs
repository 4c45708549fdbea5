//! Per-stage metrics: rows, batches, busy time, channel occupancy, and the named counters
//! a stage reports about its own work (e.g. the stereo join's late rows).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Live counters of one stage, updated by the runtime while the pipeline runs.
#[derive(Debug, Default)]
pub struct StageMetrics {
    rows_out: AtomicU64,
    batches_out: AtomicU64,
    busy_ns: AtomicU64,
    /// Batches in the output channels. Signed: a consumer may take a batch out (and
    /// decrement) before its producer, back from the send, increments.
    buffered: AtomicI64,
    peak_buffered: AtomicI64,
    /// The stage's own counters, by name (see [`StageMetrics::add_count`]).
    counters: Mutex<BTreeMap<&'static str, u64>>,
    /// How far a source is through its input (see [`StageMetrics::set_input_progress`]).
    input_done: AtomicU64,
    input_total: AtomicU64,
}

impl StageMetrics {
    /// Counts one output batch of `rows` rows.
    pub fn record_batch(&self, rows: usize) {
        self.rows_out.fetch_add(rows as u64, Ordering::Relaxed);
        self.batches_out.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds time spent computing in this stage.
    pub fn add_busy(&self, time: Duration) {
        self.busy_ns
            .fetch_add(time.as_nanos() as u64, Ordering::Relaxed);
    }

    /// A batch entered one of this stage's output channels.
    pub(crate) fn batch_buffered(&self) {
        let now = self.buffered.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak_buffered.fetch_max(now, Ordering::AcqRel);
    }

    /// A consumer took a batch out of one of this stage's output channels.
    pub(crate) fn batch_consumed(&self) {
        self.buffered.fetch_sub(1, Ordering::AcqRel);
    }

    /// Adds `n` to the stage's own counter `name` (created at 0 on first use, so a stage
    /// can declare its counters up front with `n = 0` and have them reported even when
    /// nothing happened). Reported in [`StageMetricsSnapshot::counters`].
    pub fn add_count(&self, name: &'static str, n: u64) {
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counters.entry(name).or_default() += n;
    }

    /// Raises the stage's own counter `name` to `value` if it is below (a peak, e.g. the
    /// most array events a join held at once).
    pub fn max_count(&self, name: &'static str, value: u64) {
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let counter = counters.entry(name).or_default();
        *counter = (*counter).max(value);
    }

    /// A source's progress through its input: `done` of `total`, in units it chooses (bytes
    /// of its files, events to generate), for progress displays.
    pub fn set_input_progress(&self, done: u64, total: u64) {
        self.input_total.store(total, Ordering::Relaxed);
        self.input_done.store(done.min(total), Ordering::Relaxed);
    }

    /// The fraction of its input a source has read, once it has reported a total.
    pub fn input_fraction(&self) -> Option<f64> {
        let total = self.input_total.load(Ordering::Relaxed);
        (total > 0).then(|| self.input_done.load(Ordering::Relaxed) as f64 / total as f64)
    }

    /// Rows emitted so far.
    pub fn rows_out(&self) -> u64 {
        self.rows_out.load(Ordering::Relaxed)
    }

    /// A consistent-enough copy of the counters.
    pub fn snapshot(&self) -> StageMetricsSnapshot {
        StageMetricsSnapshot {
            rows: self.rows_out.load(Ordering::Relaxed),
            batches: self.batches_out.load(Ordering::Relaxed),
            busy_seconds: self.busy_ns.load(Ordering::Relaxed) as f64 * 1e-9,
            peak_buffered_batches: self.peak_buffered.load(Ordering::Relaxed).max(0) as u64,
            counters: self
                .counters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|(&name, &value)| (name.to_string(), value))
                .collect(),
        }
    }
}

/// The counters of one stage at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageMetricsSnapshot {
    /// Rows the stage emitted.
    pub rows: u64,
    /// Batches the stage emitted.
    pub batches: u64,
    /// Time spent in the stage's own code (polling its stream and its rayon kernels), s.
    pub busy_seconds: f64,
    /// Largest number of this stage's batches waiting in one of its output channels
    /// (summed over consumers); never above capacity × consumers.
    pub peak_buffered_batches: u64,
    /// The stage's own named counters (empty for most stages; the stereo join reports
    /// its late rows, incomplete events and missing telescopes here).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, u64>,
}

/// Metrics of a whole run, as printed at the end and written by `--metrics FILE`.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsReport {
    /// Wall-clock time of the run, s.
    pub wall_seconds: f64,
    /// Per stage, in pipeline order: (name, kind, counters).
    pub stages: Vec<StageReport>,
}

/// One stage's line of a [`MetricsReport`].
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// Stage name.
    pub name: String,
    /// Stage kind.
    pub kind: String,
    /// Counters.
    #[serde(flatten)]
    pub metrics: StageMetricsSnapshot,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_counters_add_up_keep_peaks_and_serialise_by_name() {
        let metrics = StageMetrics::default();
        metrics.add_count("late_rows", 0);
        metrics.add_count("missing_telescopes", 2);
        metrics.add_count("missing_telescopes", 3);
        metrics.max_count("peak_open_events", 7);
        metrics.max_count("peak_open_events", 4);
        let snapshot = metrics.snapshot();
        let expected: BTreeMap<String, u64> = [
            ("late_rows".to_string(), 0),
            ("missing_telescopes".to_string(), 5),
            ("peak_open_events".to_string(), 7),
        ]
        .into();
        assert_eq!(snapshot.counters, expected);
        let json = serde_json::to_value(&snapshot).unwrap_or_default();
        assert_eq!(json["counters"]["missing_telescopes"], 5);
        let quiet = serde_json::to_value(StageMetrics::default().snapshot()).unwrap_or_default();
        assert!(quiet.get("counters").is_none(), "{quiet}");
    }
}
