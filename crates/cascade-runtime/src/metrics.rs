//! Per-stage metrics: rows, batches, busy time and channel occupancy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Live counters of one stage, updated by the runtime while the pipeline runs.
#[derive(Debug, Default)]
pub struct StageMetrics {
    rows_out: AtomicU64,
    batches_out: AtomicU64,
    busy_ns: AtomicU64,
    buffered: AtomicU64,
    peak_buffered: AtomicU64,
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
            peak_buffered_batches: self.peak_buffered.load(Ordering::Relaxed),
        }
    }
}

/// The counters of one stage at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
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
