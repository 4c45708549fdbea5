//! Sources that read or generate on a blocking thread and hand batches to the async
//! runtime through a bounded channel (backpressure reaches the producer as a blocking send).

use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use cascade_runtime::{SendableRecordBatchStream, StageContext, StageError};
use datafusion_physical_plan::stream::RecordBatchReceiverStreamBuilder;

/// Runs `produce` on a blocking thread. It calls its `emit` argument with each batch; `emit`
/// returns false once nobody reads the output any more, and `produce` should then stop.
/// The stage's busy time is the producer's time minus the time spent waiting to deliver.
pub fn blocking_source<F>(
    schema: SchemaRef,
    ctx: StageContext,
    produce: F,
) -> SendableRecordBatchStream
where
    F: FnOnce(usize, &mut dyn FnMut(RecordBatch) -> bool) -> Result<(), StageError>
        + Send
        + 'static,
{
    let mut builder = RecordBatchReceiverStreamBuilder::new(schema, 2);
    let sender = builder.tx();
    builder.spawn_blocking(move || {
        let started = Instant::now();
        let mut waiting = Duration::ZERO;
        let mut emit = |batch: RecordBatch| {
            let start = Instant::now();
            let delivered = sender.blocking_send(Ok(batch)).is_ok();
            waiting += start.elapsed();
            delivered
        };
        let result = produce(ctx.batch_size, &mut emit);
        ctx.metrics
            .add_busy(started.elapsed().saturating_sub(waiting));
        result.map_err(Into::into)
    });
    builder.build()
}
