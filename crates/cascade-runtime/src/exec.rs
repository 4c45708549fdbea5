//! `StageExec`: one pipeline stage as a DataFusion `ExecutionPlan` node.
//!
//! Executing the node starts its stage on its children's streams and pumps the stage's
//! output into one bounded channel per consumer (fan-out). A node with several consumers is
//! shared in the plan tree; each `execute` call hands out the next consumer's channel, so
//! the stage runs once however many parents it has.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion_common::tree_node::TreeNodeRecursion;
use datafusion_common::{DataFusionError, Result};
use datafusion_execution::{SendableRecordBatchStream, TaskContext};
use datafusion_physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion_physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion_physical_plan::stream::RecordBatchStreamAdapter;
use datafusion_physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::{Stage, StageContext, StageFailure, StageMetrics};

/// A pipeline stage as an `ExecutionPlan` node (single partition).
pub struct StageExec {
    name: String,
    stage: Arc<dyn Stage>,
    children: Vec<Arc<dyn ExecutionPlan>>,
    properties: Arc<PlanProperties>,
    channel_capacity: usize,
    batch_size: usize,
    consumers: usize,
    metrics: Arc<StageMetrics>,
    outputs: Mutex<Option<Vec<SendableRecordBatchStream>>>,
}

impl StageExec {
    /// A node running `stage` on the outputs of `children`, feeding `consumers` parents
    /// (at least one) through channels of `channel_capacity` batches.
    pub fn new(
        name: String,
        stage: Arc<dyn Stage>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        schema: SchemaRef,
        channel_capacity: usize,
        batch_size: usize,
        consumers: usize,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            name,
            stage,
            children,
            properties: Arc::new(properties),
            channel_capacity: channel_capacity.max(1),
            batch_size,
            consumers: consumers.max(1),
            metrics: Arc::new(StageMetrics::default()),
            outputs: Mutex::new(None),
        }
    }

    /// The stage's name in the pipeline.
    pub fn stage_name(&self) -> &str {
        &self.name
    }

    /// The stage.
    pub fn stage(&self) -> &Arc<dyn Stage> {
        &self.stage
    }

    /// The stage's live metrics.
    pub fn stage_metrics(&self) -> &Arc<StageMetrics> {
        &self.metrics
    }

    fn start(&self, context: &Arc<TaskContext>) -> Result<Vec<SendableRecordBatchStream>> {
        let inputs = self
            .children
            .iter()
            .map(|child| child.execute(0, Arc::clone(context)))
            .collect::<Result<Vec<_>>>()?;
        let stage_context = StageContext {
            name: self.name.clone(),
            metrics: Arc::clone(&self.metrics),
            batch_size: self.batch_size,
        };
        let output = self
            .stage
            .execute(inputs, stage_context)
            .map_err(|e| StageFailure::tag(&self.name, e.into()))?;

        let schema = self.schema();
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..self.consumers)
            .map(|_| mpsc::channel(self.channel_capacity))
            .unzip();
        let pump = tokio::spawn(pump(
            self.name.clone(),
            output,
            senders,
            Arc::clone(&self.metrics),
        ));
        let pump = Arc::new(AbortOnDrop(pump));
        Ok(receivers
            .into_iter()
            .map(|receiver| {
                let stream = ChannelStream {
                    receiver,
                    metrics: Arc::clone(&self.metrics),
                    _pump: Arc::clone(&pump),
                };
                Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&schema), stream))
                    as SendableRecordBatchStream
            })
            .collect())
    }
}

/// Drives a stage's output stream into its consumers' channels, counting and timing.
async fn pump(
    name: String,
    mut output: SendableRecordBatchStream,
    senders: Vec<mpsc::Sender<Result<RecordBatch>>>,
    metrics: Arc<StageMetrics>,
) {
    loop {
        let next = TimedNext {
            stream: &mut output,
            metrics: &metrics,
        }
        .await;
        let Some(item) = next else { return };
        match item {
            Ok(batch) => {
                metrics.record_batch(batch.num_rows());
                for sender in &senders {
                    if sender.send(Ok(batch.clone())).await.is_err() {
                        return;
                    }
                    metrics.batch_buffered();
                }
            }
            Err(error) => {
                let error = Arc::new(StageFailure::tag(&name, error));
                for sender in &senders {
                    let _ = sender
                        .send(Err(DataFusionError::Shared(Arc::clone(&error))))
                        .await;
                }
                return;
            }
        }
    }
}

/// Polls a stream once, adding the time spent inside `poll_next` to the stage's busy time.
struct TimedNext<'a> {
    stream: &'a mut SendableRecordBatchStream,
    metrics: &'a StageMetrics,
}

impl Future for TimedNext<'_> {
    type Output = Option<Result<RecordBatch>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let start = Instant::now();
        let result = self.stream.poll_next_unpin(cx);
        self.metrics.add_busy(start.elapsed());
        result
    }
}

/// Aborts the pump task when the last consumer stream is dropped (cancellation).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One consumer's end of a stage's output.
struct ChannelStream {
    receiver: mpsc::Receiver<Result<RecordBatch>>,
    metrics: Arc<StageMetrics>,
    _pump: Arc<AbortOnDrop>,
}

impl Stream for ChannelStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.receiver.poll_recv(cx);
        if let Poll::Ready(Some(Ok(_))) = &polled {
            self.metrics.batch_consumed();
        }
        polled
    }
}

impl fmt::Debug for StageExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StageExec")
            .field("name", &self.name)
            .field("kind", &self.stage.kind())
            .field("consumers", &self.consumers)
            .finish()
    }
}

impl DisplayAs for StageExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "StageExec: name={}, kind={}",
            self.name,
            self.stage.kind()
        )
    }
}

impl ExecutionPlan for StageExec {
    fn name(&self) -> &str {
        "StageExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.children.iter().collect()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(StageExec::new(
            self.name.clone(),
            Arc::clone(&self.stage),
            children,
            self.schema(),
            self.channel_capacity,
            self.batch_size,
            self.consumers,
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "stage {} has one partition, asked for {partition}",
                self.name
            )));
        }
        let mut outputs = self
            .outputs
            .lock()
            .map_err(|_| DataFusionError::Internal("stage state poisoned".to_string()))?;
        if outputs.is_none() {
            *outputs = Some(self.start(&context)?);
        }
        outputs.as_mut().and_then(Vec::pop).ok_or_else(|| {
            DataFusionError::Internal(format!(
                "stage {} executed more often than it has consumers ({})",
                self.name, self.consumers
            ))
        })
    }
}
