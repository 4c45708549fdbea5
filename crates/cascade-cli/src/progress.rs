//! A progress line on the terminal while a pipeline runs: rows emitted by each source.

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
            let mut ticker = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = &mut stopped => break,
                }
                let line: Vec<String> = stages
                    .iter()
                    .map(|(name, m)| format!("{name}: {}", m.rows_out()))
                    .collect();
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
