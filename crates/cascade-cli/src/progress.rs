//! A progress line on the terminal while a pipeline runs: rows emitted by each stage, and,
//! when the source reports how far through its input it is, the percentage done and the
//! time left at the rate so far.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use cascade_runtime::StageMetrics;
use indicatif::{ProgressBar, ProgressStyle};

/// The running progress display (nothing when stderr is not a terminal).
pub struct Progress {
    task: Option<(
        tokio::task::JoinHandle<()>,
        tokio::sync::oneshot::Sender<()>,
    )>,
}

impl Progress {
    /// Starts updating from the stages' live metrics (the first stage is a source).
    pub fn start(stages: Vec<(String, Arc<StageMetrics>)>) -> Self {
        if !std::io::stderr().is_terminal() || stages.is_empty() {
            return Self { task: None };
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let mut ticker = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = &mut stopped => break,
                }
                let mut line: Vec<String> = stages
                    .iter()
                    .map(|(name, m)| format!("{name}: {}", m.rows_out()))
                    .collect();
                if let Some(fraction) = stages[0].1.input_fraction() {
                    line.insert(0, done_and_left(fraction, started.elapsed()));
                }
                bar.set_message(line.join("  "));
                bar.tick();
            }
            bar.finish_and_clear();
        });
        Self {
            task: Some((task, stop)),
        }
    }

    /// Stops and clears the display.
    pub async fn finish(self) {
        if let Some((task, stop)) = self.task {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

/// `"42 % of the input, ~1m 05s left"`: the time left assumes the rate so far.
fn done_and_left(fraction: f64, elapsed: Duration) -> String {
    let percent = format!("{:.0} % of the input", fraction * 100.0);
    if fraction <= 0.0 || fraction >= 1.0 {
        return percent;
    }
    let left = elapsed.as_secs_f64() * (1.0 - fraction) / fraction;
    let (minutes, seconds) = ((left / 60.0).floor(), left % 60.0);
    if minutes > 0.0 {
        format!("{percent}, ~{minutes:.0}m {seconds:02.0}s left")
    } else {
        format!("{percent}, ~{seconds:.0}s left")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_left_follows_the_rate_so_far() {
        let ten_seconds = Duration::from_secs(10);
        assert_eq!(done_and_left(0.0, ten_seconds), "0 % of the input");
        assert_eq!(
            done_and_left(0.5, ten_seconds),
            "50 % of the input, ~10s left"
        );
        assert_eq!(
            done_and_left(0.1, ten_seconds),
            "10 % of the input, ~1m 30s left"
        );
        assert_eq!(done_and_left(1.0, ten_seconds), "100 % of the input");
    }
}
