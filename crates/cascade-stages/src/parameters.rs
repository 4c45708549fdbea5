//! `kind = "image_parameters"`: ctapipe's DL1 image parameters (Hillas, timing, leakage,
//! concentration, morphology, intensity and peak-time statistics) in the telescope frame,
//! as `ctapipe-process` reports them (`cascade_image::params::image_parameters`).
//!
//! Input: DL1 images with `image`, `image_mask` and `peak_time`. Output: one row per
//! telescope event with the columns of the `dl1_parameters` level (ids, parameters,
//! pointing, and, when the input carries them, the array pointing, `tels_with_trigger` and
//! the simulated truth). Images failing ctapipe's image quality query give NaN parameters
//! (morphology counts -1), not errors.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array};
use arrow::datatypes::{DataType, Float32Type, Int16Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use cascade_image::params::{
    ColumnValue, Frame, ImageParameters, ParameterWorkspace, ParametrizationGeometry,
    image_parameters_of_selected,
};
use cascade_instrument::frames::{CameraFrame, CameraPoint};
use cascade_instrument::{FocalLengthChoice, TelescopeDescription};
use cascade_pipeline::{BuildContext, BuildError, BuiltStage, PerTelescope, TypedFactory};
use cascade_runtime::{BatchStage, MapStage, StageError, StageRole, check_column};
use cascade_schema::Level;
use rayon::prelude::*;

use crate::columns::{primitive, uniform_list_values};

cascade_pipeline::stage_config! {
    /// Options of the image-parameter stage.
    pub struct ParametersConfig {
        /// Focal length converting the camera frame to the telescope frame: "equivalent"
        /// (as the ctapipe references) or "effective" (falls back to equivalent when absent).
        focal_length_choice: FocalLengthChoice = FocalLengthChoice::Equivalent,
    }
}

/// The parameter stage's entry in the stage registry.
pub fn factory() -> TypedFactory<ParametersConfig> {
    TypedFactory::new(
        "image_parameters",
        StageRole::Transform,
        "DL1 image parameters in the telescope frame with ctapipe's names and units \
         (hillas_*, timing_*, leakage_*, concentration_*, morphology_*, intensity_*, peak_time_*).",
        build,
    )
    .same_for_every_telescope()
}

thread_local! {
    /// Per-thread scratch of the kernels and the event's selected pixels, reused across
    /// events and batches (rayon's worker threads live as long as the pool).
    static SCRATCH: RefCell<(ParameterWorkspace, Vec<u32>)> = RefCell::default();
}

/// Columns copied from the input when present, before the parameters.
const ID_COLUMNS: [&str; 3] = ["obs_id", "event_id", "tel_id"];

fn build(
    config: PerTelescope<ParametersConfig>,
    context: &BuildContext,
) -> Result<BuiltStage, BuildError> {
    let config = config.default_value().clone();
    let mut geometries: HashMap<String, Arc<ParametrizationGeometry>> = HashMap::new();
    let mut by_tel_id = BTreeMap::new();
    for (&tel_id, telescope) in &context.subarray.telescopes {
        let geometry = match geometries.get(&telescope.name) {
            Some(geometry) => Arc::clone(geometry),
            None => {
                let geometry = Arc::new(
                    telescope_frame_geometry(telescope, config.focal_length_choice)
                        .map_err(|e| BuildError::stage(format!("telescope {tel_id}: {e}")))?,
                );
                geometries.insert(telescope.name.clone(), Arc::clone(&geometry));
                geometry
            }
        };
        by_tel_id.insert(tel_id, geometry);
    }
    Ok(BuiltStage::new(Arc::new(MapStage::new(
        ImageParametersStage {
            config,
            geometries: by_tel_id,
            column_index: parameter_column_index(),
        },
    ))))
}

/// Pixel coordinates in the telescope frame (deg, deg²), as ctapipe's `ImageProcessor`
/// transforms the camera geometry (`CameraGeometry.transform_to(TelescopeFrame())`).
fn telescope_frame_geometry(
    telescope: &TelescopeDescription,
    choice: FocalLengthChoice,
) -> Result<ParametrizationGeometry, cascade_image::ImageError> {
    let camera = &telescope.camera;
    let focal_length = telescope.optics.frame_focal_length_m(choice);
    let frame = CameraFrame::new(focal_length);
    let (lon, lat): (Vec<f64>, Vec<f64>) = camera
        .pix_x_m
        .iter()
        .zip(&camera.pix_y_m)
        .map(|(&x_m, &y_m)| {
            let fov = frame.to_telescope(CameraPoint { x_m, y_m });
            (fov.fov_lon_deg, fov.fov_lat_deg)
        })
        .unzip();
    let to_deg2 = (180.0 / std::f64::consts::PI / focal_length).powi(2);
    let area = camera.pix_area_m2.iter().map(|a| a * to_deg2).collect();
    ParametrizationGeometry::new(
        Frame::Telescope,
        lon,
        lat,
        area,
        camera.pix_type,
        camera.neighbors.clone(),
    )
}

/// Position of every parameter column (ctapipe's name) in [`ImageParameters::columns`].
fn parameter_column_index() -> HashMap<String, usize> {
    ImageParameters::missing(Frame::Telescope)
        .columns()
        .iter()
        .enumerate()
        .map(|(index, column)| (column.full_name(), index))
        .collect()
}

/// The image-parameter stage.
#[derive(Debug)]
pub struct ImageParametersStage {
    config: ParametersConfig,
    geometries: BTreeMap<u16, Arc<ParametrizationGeometry>>,
    /// Column name -> position in [`ImageParameters::columns`], built once.
    column_index: HashMap<String, usize>,
}

impl BatchStage for ImageParametersStage {
    fn kind(&self) -> &'static str {
        "image_parameters"
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef, StageError> {
        check_column(input, "tel_id", &DataType::Int16)?;
        for column in ["image", "peak_time", "image_mask"] {
            check_column(input, column, Level::Dl1Images.field(column).data_type())?;
        }
        let level = Level::Dl1Parameters.schema();
        let fields = level
            .fields()
            .iter()
            .filter(|f| !is_copied(f.name()) || input.field_with_name(f.name()).is_ok())
            .cloned()
            .collect::<Vec<_>>();
        Ok(Arc::new(Schema::new(fields)))
    }

    fn process(&self, batch: RecordBatch, output: &SchemaRef) -> Result<RecordBatch, StageError> {
        let tel_ids = primitive::<Int16Type>(&batch, "tel_id")?;
        let (images, n_pixels) = uniform_list_values::<Float32Type>(&batch, "image")?;
        let (peak_times, _) = uniform_list_values::<Float32Type>(&batch, "peak_time")?;
        let masks = batch
            .column_by_name("image_mask")
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::ListArray>())
            .ok_or_else(|| StageError::Data("image_mask is not a list".to_string()))?;
        let mask_values = masks
            .values()
            .as_any()
            .downcast_ref::<arrow::array::BooleanArray>()
            .ok_or_else(|| StageError::Data("image_mask items are not booleans".to_string()))?;
        let mask_offset = masks.value_offsets()[0] as usize;
        let mask_bits = mask_values.values();
        let n_events = batch.num_rows();
        let parameters = (0..n_events)
            .into_par_iter()
            .map(|event| {
                let tel_id = tel_ids.value(event) as u16;
                let geometry = self.geometries.get(&tel_id).ok_or_else(|| {
                    StageError::Data(format!("telescope {tel_id} is not in the instrument"))
                })?;
                SCRATCH.with_borrow_mut(|(workspace, selected)| {
                    // the set bits of the event's mask, read a 64-bit word at a time
                    selected.clear();
                    let start = mask_offset + event * n_pixels;
                    selected.extend(mask_bits.slice(start, n_pixels).set_indices_u32());
                    let pixels = event * n_pixels..(event + 1) * n_pixels;
                    image_parameters_of_selected(
                        geometry,
                        &images[pixels.clone()],
                        Some(&peak_times[pixels]),
                        selected,
                        workspace,
                    )
                    .map_err(|e| StageError::Data(format!("telescope {tel_id}: {e}")))
                })
            })
            .collect::<Result<Vec<_>, StageError>>()?;
        // one row-major [event][column] block, then one column per parameter
        let mut values = Vec::with_capacity(n_events * ImageParameters::N_COLUMNS);
        for event in &parameters {
            event.for_each_column(|column| values.push(column.value));
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(output.fields().len());
        for field in output.fields() {
            let name = field.name();
            if is_copied(name) {
                let column =
                    batch
                        .column_by_name(name)
                        .ok_or_else(|| StageError::MissingColumn {
                            column: name.clone(),
                            expected: field.data_type().to_string(),
                        })?;
                columns.push(Arc::clone(column));
                continue;
            }
            let column = self.column_index.get(name.as_str()).map(|&index| {
                values
                    .iter()
                    .skip(index)
                    .step_by(ImageParameters::N_COLUMNS)
            });
            columns.push(match (field.data_type(), column) {
                (DataType::Int64, Some(column)) => {
                    Arc::new(Int64Array::from_iter_values(column.map(|v| match v {
                        ColumnValue::Int(i) => *i,
                        ColumnValue::Float(f) => *f as i64,
                    })))
                }
                (_, Some(column)) => {
                    Arc::new(Float64Array::from_iter_values(column.map(|v| v.as_f64())))
                }
                (DataType::Int64, None) => Arc::new(Int64Array::from(vec![-1; n_events])),
                (_, None) => Arc::new(Float64Array::from(vec![f64::NAN; n_events])),
            });
        }
        Ok(RecordBatch::try_new(Arc::clone(output), columns)?)
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or_default()
    }
}

/// Whether a `dl1_parameters` column is copied from the input (ids, pointing, the array
/// event's pointing and telescopes, truth) rather than computed here.
fn is_copied(name: &str) -> bool {
    ID_COLUMNS.contains(&name)
        || name == "tels_with_trigger"
        || name.starts_with("pointing_")
        || name.starts_with("array_pointing_")
        || name.starts_with("true_")
}
