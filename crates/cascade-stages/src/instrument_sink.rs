//! `kind = "instrument"`: writes the instrument of the pipeline's sources, the `subarray`
//! level (one row per telescope) and the `camera_geometry` level (one row per pixel of
//! every camera type), as the Parquet datasets `<output_dir>/<sink name>/subarray/` and
//! `<output_dir>/<sink name>/camera_geometry/`: what ctapipe writes under
//! `/configuration/instrument` next to its DL1 and DL2 tables.
//!
//! Each table is written by a [`ParquetSink`], so with its guarantees: published only when
//! the whole run succeeded, locked while it is written. The sink's input is any stream of
//! the pipeline, whose rows it does not write: reading it to the end ties the tables to
//! the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::{ArrayRef, Float64Array, Int16Array, Int32Array, ListArray, StringArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use cascade_instrument::SubarrayDescription;
use cascade_pipeline::{BuildContext, BuildError, BuiltStage, PerTelescope, TypedFactory};
use cascade_runtime::{
    Arity, SendableRecordBatchStream, Stage, StageContext, StageError, StageRole,
};
use cascade_schema::Level;
use datafusion_physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

use crate::parquet_sink::{ParquetSink, ParquetSinkConfig, missing_directories};

cascade_pipeline::stage_config! {
    /// Options of the instrument sink.
    pub struct InstrumentSinkConfig {
        /// Directory holding the datasets; this sink writes `<output_dir>/<sink name>/subarray/`
        /// and `<output_dir>/<sink name>/camera_geometry/`. `cascade run --output DIR`
        /// replaces it for every sink.
        output_dir: String = "output".to_string(),
        /// Replace existing tables at the same place when the run succeeds. When false,
        /// existing tables are an error.
        overwrite: bool = true,
    }
}

/// The instrument sink's entry in the stage registry.
pub fn factory() -> TypedFactory<InstrumentSinkConfig> {
    TypedFactory::new(
        "instrument",
        StageRole::Sink,
        "Writes the instrument of the pipeline's sources as Parquet datasets, as ctapipe's \
         /configuration/instrument tables: `<output_dir>/<sink name>/subarray/` (one row per \
         telescope: type, optics, camera, position) and `camera_geometry/` (one row per pixel \
         of every camera: position, area, shape, neighbours). Its input is any stream of the \
         pipeline (its rows are not written); the tables are published when the run succeeds.",
        build,
    )
    .same_for_every_telescope()
}

fn build(
    config: PerTelescope<InstrumentSinkConfig>,
    context: &BuildContext,
) -> Result<BuiltStage, BuildError> {
    let sink = InstrumentSink::new(config.default_value().clone(), &context.subarray)
        .map_err(|e| BuildError::stage(e.to_string()))?
        .with_pipeline_name(&context.pipeline_name);
    Ok(BuiltStage::new(Arc::new(sink)))
}

/// The instrument sink.
#[derive(Debug)]
pub struct InstrumentSink {
    config: InstrumentSinkConfig,
    pipeline_name: String,
    /// The datasets to write: (name, table).
    tables: Vec<(&'static str, RecordBatch)>,
    /// The Parquet sinks of the current run, one per table, and the directories the run
    /// creates for them (innermost first), which a failed run removes again.
    sinks: Mutex<(Vec<ParquetSink>, Vec<PathBuf>)>,
}

impl InstrumentSink {
    /// A sink writing the tables of `subarray` with the given options.
    pub fn new(
        config: InstrumentSinkConfig,
        subarray: &SubarrayDescription,
    ) -> Result<Self, StageError> {
        Ok(Self {
            config,
            pipeline_name: String::new(),
            tables: vec![
                ("subarray", subarray_table(subarray)?),
                ("camera_geometry", camera_geometry_table(subarray)?),
            ],
            sinks: Mutex::default(),
        })
    }

    /// The sink of the pipeline named `name`, which its files record.
    pub fn with_pipeline_name(mut self, name: &str) -> Self {
        self.pipeline_name = name.to_string();
        self
    }
}

impl Stage for InstrumentSink {
    fn kind(&self) -> &'static str {
        "instrument"
    }

    fn role(&self) -> StageRole {
        StageRole::Sink
    }

    fn arity(&self) -> Arity {
        Arity::Exactly(1)
    }

    fn output_schema(&self, inputs: &[SchemaRef]) -> Result<SchemaRef, StageError> {
        Arity::Exactly(1).check(inputs.len())?;
        Ok(Arc::clone(&inputs[0]))
    }

    fn execute(
        &self,
        mut inputs: Vec<SendableRecordBatchStream>,
        ctx: StageContext,
    ) -> Result<SendableRecordBatchStream, StageError> {
        Arity::Exactly(1).check(inputs.len())?;
        let mut input = inputs.remove(0);
        let schema = input.schema();
        let directory = Path::new(&self.config.output_dir).join(&ctx.name);
        let created = missing_directories(&directory);
        let mut sinks = Vec::new();
        let mut writes = Vec::new();
        for (name, table) in &self.tables {
            let sink = ParquetSink::new(ParquetSinkConfig {
                output_dir: directory.display().to_string(),
                overwrite: self.config.overwrite,
                ..ParquetSinkConfig::default()
            })
            .with_pipeline_name(&self.pipeline_name);
            let rows = futures::stream::iter([Ok(table.clone())]);
            let table_stream = RecordBatchStreamAdapter::new(table.schema(), rows);
            let context = StageContext {
                name: (*name).to_string(),
                metrics: Arc::clone(&ctx.metrics),
                batch_size: ctx.batch_size,
            };
            writes.push(sink.execute(vec![Box::pin(table_stream)], context)?);
            sinks.push(sink);
        }
        *self.sinks.lock().unwrap_or_else(PoisonError::into_inner) = (sinks, created);
        // The input to its end (its rows are not written), then the tables' writes; the
        // stream yields no rows, only an error if one of them fails.
        let done = futures::stream::once(async move {
            while let Some(batch) = input.next().await {
                if let Err(error) = batch {
                    return Some(error);
                }
            }
            for mut write in writes {
                while let Some(batch) = write.next().await {
                    if let Err(error) = batch {
                        return Some(error);
                    }
                }
            }
            None
        })
        .filter_map(|error| async move { error.map(Err) });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, done)))
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or_default()
    }

    fn commit(&self) -> Result<(), StageError> {
        let (sinks, _) =
            std::mem::take(&mut *self.sinks.lock().unwrap_or_else(PoisonError::into_inner));
        sinks.iter().try_for_each(Stage::commit)
    }

    fn abort(&self) {
        let (sinks, created) =
            std::mem::take(&mut *self.sinks.lock().unwrap_or_else(PoisonError::into_inner));
        sinks.iter().for_each(Stage::abort);
        // Each table's sink removed its own directory; the ones above it that this run
        // created go too once empty (a directory another sink writes into stays).
        for directory in created {
            if std::fs::remove_dir(&directory).is_err() {
                break;
            }
        }
    }
}

/// The `subarray` level of `subarray`: one row per telescope, ids ascending.
pub fn subarray_table(subarray: &SubarrayDescription) -> Result<RecordBatch, StageError> {
    let telescopes: Vec<_> = subarray.telescopes.iter().collect();
    let position = |tel_id: u16, axis: usize| {
        subarray
            .positions_m
            .get(&tel_id)
            .map_or(f64::NAN, |p| p[axis])
    };
    let text = |f: &dyn Fn(&cascade_instrument::TelescopeDescription) -> String| {
        Arc::new(StringArray::from_iter_values(
            telescopes.iter().map(|(_, t)| f(t)),
        )) as ArrayRef
    };
    let float = |f: &dyn Fn(u16, &cascade_instrument::TelescopeDescription) -> f64| {
        Arc::new(Float64Array::from_iter_values(
            telescopes.iter().map(|&(&id, t)| f(id, t)),
        )) as ArrayRef
    };
    let mut by_name: BTreeMap<&str, ArrayRef> = BTreeMap::new();
    by_name.insert(
        "tel_id",
        Arc::new(Int16Array::from_iter_values(
            telescopes.iter().map(|&(&id, _)| id as i16),
        )),
    );
    by_name.insert("tel_type", text(&|t| t.name.clone()));
    by_name.insert("optics_name", text(&|t| t.optics.name.clone()));
    by_name.insert("camera_name", text(&|t| t.camera.name.clone()));
    by_name.insert(
        "n_pixels",
        Arc::new(Int32Array::from_iter_values(
            telescopes.iter().map(|(_, t)| t.camera.n_pixels() as i32),
        )),
    );
    by_name.insert("pos_x", float(&|id, _| position(id, 0)));
    by_name.insert("pos_y", float(&|id, _| position(id, 1)));
    by_name.insert("pos_z", float(&|id, _| position(id, 2)));
    by_name.insert(
        "equivalent_focal_length",
        float(&|_, t| t.optics.equivalent_focal_length_m),
    );
    by_name.insert(
        "effective_focal_length",
        float(&|_, t| t.optics.effective_focal_length_m),
    );
    by_name.insert("mirror_area", float(&|_, t| t.optics.mirror_area_m2));
    batch_of(Level::Subarray, by_name)
}

/// The `camera_geometry` level of `subarray`: one row per pixel of every camera type
/// (cameras by name, ascending), pixels in camera order.
pub fn camera_geometry_table(subarray: &SubarrayDescription) -> Result<RecordBatch, StageError> {
    let cameras: BTreeMap<&str, &cascade_instrument::CameraGeometry> = subarray
        .telescopes
        .values()
        .map(|t| (t.camera.name.as_str(), t.camera.as_ref()))
        .collect();
    let all_pixels: Vec<(&cascade_instrument::CameraGeometry, usize)> = cameras
        .values()
        .flat_map(|camera| (0..camera.n_pixels()).map(move |pixel| (*camera, pixel)))
        .collect();
    let pixels = || all_pixels.iter().copied();
    let float = |f: &dyn Fn(&cascade_instrument::CameraGeometry, usize) -> f64| {
        Arc::new(Float64Array::from_iter_values(
            pixels().map(|(camera, pixel)| f(camera, pixel)),
        )) as ArrayRef
    };
    let mut by_name: BTreeMap<&str, ArrayRef> = BTreeMap::new();
    by_name.insert(
        "camera_name",
        Arc::new(StringArray::from_iter_values(
            pixels().map(|(camera, _)| camera.name.as_str()),
        )),
    );
    by_name.insert(
        "pix_id",
        Arc::new(Int32Array::from_iter_values(
            pixels().map(|(_, pixel)| pixel as i32),
        )),
    );
    by_name.insert("pix_x", float(&|c, p| c.pix_x_m[p]));
    by_name.insert("pix_y", float(&|c, p| c.pix_y_m[p]));
    by_name.insert("pix_area", float(&|c, p| c.pix_area_m2[p]));
    by_name.insert(
        "pix_type",
        Arc::new(StringArray::from_iter_values(
            pixels().map(|(camera, _)| camera.pix_type.as_str()),
        )),
    );
    by_name.insert("pix_rotation", float(&|c, _| c.pix_rotation_deg));
    by_name.insert("cam_rotation", float(&|c, _| c.cam_rotation_deg));
    let neighbors = Int32Array::from_iter_values(
        pixels().flat_map(|(camera, pixel)| camera.neighbors.of(pixel).iter().map(|&n| n as i32)),
    );
    let lengths = pixels().map(|(camera, pixel)| camera.neighbors.of(pixel).len());
    let DataType::List(item) = Level::CameraGeometry.field("neighbors").data_type().clone() else {
        return Err(StageError::Data(
            "neighbors is not a list column".to_string(),
        ));
    };
    by_name.insert(
        "neighbors",
        Arc::new(ListArray::try_new(
            item,
            OffsetBuffer::from_lengths(lengths),
            Arc::new(neighbors),
            None,
        )?),
    );
    batch_of(Level::CameraGeometry, by_name)
}

/// A batch of `level`'s schema from its columns by name.
fn batch_of(
    level: Level,
    mut by_name: BTreeMap<&str, ArrayRef>,
) -> Result<RecordBatch, StageError> {
    let schema = level.schema();
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            by_name.remove(field.name().as_str()).ok_or_else(|| {
                StageError::Data(format!(
                    "no value for {} column {}",
                    level.name(),
                    field.name()
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema, columns)?)
}
