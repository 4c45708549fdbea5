//! Image cleaning: `kind = "clean"` cleans with one of ctapipe's image cleaners, chosen by
//! class name as ctapipe's `ImageProcessor.image_cleaner_type` (tail cuts, MARS, FACT or
//! MAGIC's time-constrained cleaning, `cascade_image::cleaning`), and `kind =
//! "tailcuts_clean"` with the tail cuts alone; options per telescope type.
//!
//! Input: DL1 images (`image`, and `peak_time` for the cleaners that use arrival times).
//! Output: the input plus `image_mask`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::buffer::{BooleanBuffer, Buffer};
use arrow::datatypes::{DataType, Float32Type, Int16Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use cascade_image::ImageError;
use cascade_image::cleaning::{
    CleaningWorkspace, FactParams, TailcutsParams, TimeConstrainedParams, fact_image_cleaning,
    mars_cleaning_1st_pass, tailcuts_clean, time_constrained_clean,
};
use cascade_instrument::Neighbors;
use cascade_pipeline::{BuildContext, BuildError, BuiltStage, PerTelescope, TypedFactory};
use cascade_runtime::{BatchStage, MapStage, StageError, StageRole, check_column};
use cascade_schema::Level;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::columns::{primitive, uniform_list, uniform_list_values, with_columns};

cascade_pipeline::stage_config! {
    /// Options of image cleaning with one of ctapipe's image cleaners (ctapipe
    /// `ImageProcessor.image_cleaner_type` and the cleaners' options, with their class
    /// defaults as `ctapipe-process` uses them).
    pub struct CleanConfig {
        /// The cleaner, by ctapipe's class name: "TailcutsImageCleaner",
        /// "MARSImageCleaner", "FACTImageCleaner" or "TimeConstrainedImageCleaner".
        image_cleaner_type: ImageCleanerType = ImageCleanerType::TailcutsImageCleaner,
        /// Picture threshold (p.e.), every cleaner.
        picture_threshold_pe: f64 = 10.0,
        /// Boundary threshold (p.e.), every cleaner.
        boundary_threshold_pe: f64 = 5.0,
        /// Minimum number of picture neighbours of a picture pixel, every cleaner (ctapipe
        /// `min_picture_neighbors`; FACT: of selected and coincident neighbours).
        min_number_picture_neighbors: usize = 2,
        /// Keep picture pixels without selected neighbours (TailcutsImageCleaner only; the
        /// MARS cleaner never keeps them, as ctapipe's).
        keep_isolated_pixels: bool = false,
        /// Arrival-time limit between neighbouring pixels (ns), FACTImageCleaner.
        time_limit_ns: f64 = 5.0,
        /// Arrival-time limit of core pixels from the main island's mean time (ns),
        /// TimeConstrainedImageCleaner.
        time_limit_core_ns: f64 = 4.5,
        /// Arrival-time limit of boundary pixels from their core neighbours (ns),
        /// TimeConstrainedImageCleaner.
        time_limit_boundary_ns: f64 = 1.5,
    }
}

cascade_pipeline::stage_config! {
    /// Options of tail-cuts cleaning (ctapipe `TailcutsImageCleaner`; defaults as in
    /// `ctapipe-process`).
    pub struct TailcutsConfig {
        /// Picture threshold (p.e.): pixels at or above it seed the image.
        picture_threshold_pe: f64 = 10.0,
        /// Boundary threshold (p.e.): pixels at or above it are kept next to a picture pixel.
        boundary_threshold_pe: f64 = 5.0,
        /// A picture pixel needs at least this many picture neighbours.
        min_number_picture_neighbors: usize = 2,
        /// Keep picture pixels without selected neighbours.
        keep_isolated_pixels: bool = false,
    }
}

/// ctapipe's image cleaners, by class name (`NSBImageCleaner`, which needs pedestal
/// monitoring data, is not among them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageCleanerType {
    /// Picture and boundary thresholds (ctapipe `tailcuts_clean`), `ctapipe-process`'s
    /// default.
    TailcutsImageCleaner,
    /// Tail cuts plus the boundary pixels next to them (ctapipe `mars_cleaning_1st_pass`).
    MARSImageCleaner,
    /// Thresholds and arrival-time coincidences of neighbours (ctapipe
    /// `fact_image_cleaning`).
    FACTImageCleaner,
    /// MAGIC's cleaning with arrival-time limits for core and boundary pixels (ctapipe
    /// `time_constrained_clean`).
    TimeConstrainedImageCleaner,
}

thread_local! {
    /// Per-thread scratch of the cleaning kernels, reused across events and batches.
    static WORKSPACE: RefCell<CleaningWorkspace> = RefCell::default();
}

/// The `clean` stage's entry in the stage registry.
pub fn factory() -> TypedFactory<CleanConfig> {
    TypedFactory::new(
        "clean",
        StageRole::Transform,
        "Image cleaning with one of ctapipe's cleaners (image_cleaner_type: tail cuts, MARS, FACT \
         or time-constrained) on any camera geometry; adds `image_mask`. Options can differ per \
         telescope type through overrides.",
        build_clean,
    )
}

/// The `tailcuts_clean` stage's entry in the stage registry.
pub fn tailcuts_factory() -> TypedFactory<TailcutsConfig> {
    TypedFactory::new(
        "tailcuts_clean",
        StageRole::Transform,
        "Tail-cuts image cleaning (ctapipe tailcuts_clean) on any camera geometry; adds `image_mask`. \
         Thresholds can differ per telescope type through overrides.",
        build_tailcuts,
    )
}

fn build_clean(
    config: PerTelescope<CleanConfig>,
    context: &BuildContext,
) -> Result<BuiltStage, BuildError> {
    let stage = ImageClean::new("clean", &config, context, |c| {
        let tailcuts = TailcutsParams {
            picture_threshold_pe: c.picture_threshold_pe,
            boundary_threshold_pe: c.boundary_threshold_pe,
            min_number_picture_neighbors: c.min_number_picture_neighbors,
            keep_isolated_pixels: c.keep_isolated_pixels,
        };
        match c.image_cleaner_type {
            ImageCleanerType::TailcutsImageCleaner => Cleaner::Tailcuts(tailcuts),
            // ctapipe's MARSImageCleaner passes keep_isolated_pixels=False.
            ImageCleanerType::MARSImageCleaner => Cleaner::Mars(TailcutsParams {
                keep_isolated_pixels: false,
                ..tailcuts
            }),
            ImageCleanerType::FACTImageCleaner => Cleaner::Fact(FactParams {
                picture_threshold_pe: c.picture_threshold_pe,
                boundary_threshold_pe: c.boundary_threshold_pe,
                min_number_neighbors: c.min_number_picture_neighbors,
                time_limit_ns: c.time_limit_ns,
            }),
            ImageCleanerType::TimeConstrainedImageCleaner => {
                Cleaner::TimeConstrained(TimeConstrainedParams {
                    picture_threshold_pe: c.picture_threshold_pe,
                    boundary_threshold_pe: c.boundary_threshold_pe,
                    time_limit_core_ns: c.time_limit_core_ns,
                    time_limit_boundary_ns: c.time_limit_boundary_ns,
                    min_number_picture_neighbors: c.min_number_picture_neighbors,
                })
            }
        }
    })?;
    Ok(BuiltStage::new(Arc::new(MapStage::new(stage))))
}

fn build_tailcuts(
    config: PerTelescope<TailcutsConfig>,
    context: &BuildContext,
) -> Result<BuiltStage, BuildError> {
    let stage = ImageClean::new("tailcuts_clean", &config, context, |c| {
        Cleaner::Tailcuts(TailcutsParams {
            picture_threshold_pe: c.picture_threshold_pe,
            boundary_threshold_pe: c.boundary_threshold_pe,
            min_number_picture_neighbors: c.min_number_picture_neighbors,
            keep_isolated_pixels: c.keep_isolated_pixels,
        })
    })?;
    Ok(BuiltStage::new(Arc::new(MapStage::new(stage))))
}

/// One telescope's cleaner with its parameters.
#[derive(Debug, Clone, Copy)]
enum Cleaner {
    Tailcuts(TailcutsParams),
    Mars(TailcutsParams),
    Fact(FactParams),
    TimeConstrained(TimeConstrainedParams),
}

impl Cleaner {
    /// The picture and boundary thresholds (p.e.).
    fn thresholds(&self) -> (f64, f64) {
        match self {
            Self::Tailcuts(p) | Self::Mars(p) => (p.picture_threshold_pe, p.boundary_threshold_pe),
            Self::Fact(p) => (p.picture_threshold_pe, p.boundary_threshold_pe),
            Self::TimeConstrained(p) => (p.picture_threshold_pe, p.boundary_threshold_pe),
        }
    }

    /// Whether the cleaner needs the pixels' arrival times.
    fn uses_peak_time(&self) -> bool {
        matches!(self, Self::Fact(_) | Self::TimeConstrained(_))
    }

    /// Writes the cleaning mask of one image (p.e.; `peak_time` in ns, present when
    /// [`Cleaner::uses_peak_time`]).
    fn clean(
        &self,
        neighbors: &Neighbors,
        image: &[f32],
        peak_time: Option<&[f32]>,
        workspace: &mut CleaningWorkspace,
        mask: &mut [bool],
    ) -> Result<(), ImageError> {
        let peak_time = || peak_time.unwrap_or(&[]);
        match self {
            Self::Tailcuts(p) => tailcuts_clean(neighbors, image, p, workspace, mask),
            Self::Mars(p) => mars_cleaning_1st_pass(neighbors, image, p, workspace, mask),
            Self::Fact(p) => fact_image_cleaning(neighbors, image, peak_time(), p, workspace, mask),
            Self::TimeConstrained(p) => {
                time_constrained_clean(neighbors, image, peak_time(), p, workspace, mask)
            }
        }
    }
}

/// The image cleaning stage (both kinds).
#[derive(Debug)]
pub struct ImageClean {
    kind: &'static str,
    config: serde_json::Value,
    telescopes: BTreeMap<u16, (Cleaner, Arc<Neighbors>)>,
    /// Whether some telescope's cleaner reads `peak_time`.
    uses_peak_time: bool,
}

impl ImageClean {
    /// The stage of `kind` with the cleaner `cleaner` makes of each telescope's options.
    fn new<C: Clone + Serialize>(
        kind: &'static str,
        config: &PerTelescope<C>,
        context: &BuildContext,
        cleaner: impl Fn(&C) -> Cleaner,
    ) -> Result<Self, BuildError> {
        let mut telescopes = BTreeMap::new();
        for (&tel_id, telescope) in &context.subarray.telescopes {
            let cleaner = cleaner(config.get(tel_id));
            let (picture, boundary) = cleaner.thresholds();
            if boundary > picture {
                return Err(BuildError::option(
                    "boundary_threshold_pe",
                    "must not exceed picture_threshold_pe",
                ));
            }
            telescopes.insert(
                tel_id,
                (cleaner, Arc::new(telescope.camera.neighbors.clone())),
            );
        }
        let uses_peak_time = telescopes.values().any(|(c, _)| c.uses_peak_time());
        Ok(Self {
            kind,
            config: serde_json::to_value(config.default_value()).unwrap_or_default(),
            telescopes,
            uses_peak_time,
        })
    }
}

impl BatchStage for ImageClean {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef, StageError> {
        check_column(input, "tel_id", &DataType::Int16)?;
        check_column(input, "image", Level::Dl1Images.field("image").data_type())?;
        if self.uses_peak_time {
            check_column(
                input,
                "peak_time",
                Level::Dl1Images.field("peak_time").data_type(),
            )?;
        }
        let mut fields: Vec<_> = input
            .fields()
            .iter()
            .filter(|f| f.name() != "image_mask")
            .cloned()
            .collect();
        fields.push(Level::Dl1Images.field("image_mask"));
        Ok(Arc::new(Schema::new(fields)))
    }

    fn process(&self, batch: RecordBatch, output: &SchemaRef) -> Result<RecordBatch, StageError> {
        let tel_ids = primitive::<Int16Type>(&batch, "tel_id")?;
        let (images, n_pixels) = uniform_list_values::<Float32Type>(&batch, "image")?;
        let peak_times = if self.uses_peak_time {
            let (times, n_times) = uniform_list_values::<Float32Type>(&batch, "peak_time")?;
            if n_times != n_pixels {
                return Err(StageError::Data(format!(
                    "peak_time has {n_times} values per event, image {n_pixels}"
                )));
            }
            Some(times)
        } else {
            None
        };
        let mut masks = vec![false; images.len()];
        masks
            .par_chunks_mut(n_pixels.max(1))
            .enumerate()
            .try_for_each(|(event, mask)| {
                let tel_id = tel_ids.value(event) as u16;
                let (cleaner, neighbors) = self.telescopes.get(&tel_id).ok_or_else(|| {
                    StageError::Data(format!("telescope {tel_id} is not in the instrument"))
                })?;
                let pixels = event * n_pixels..(event + 1) * n_pixels;
                let image = &images[pixels.clone()];
                let peak_time = peak_times.map(|times| &times[pixels]);
                WORKSPACE
                    .with_borrow_mut(|workspace| {
                        cleaner.clean(neighbors, image, peak_time, workspace, mask)
                    })
                    .map_err(|e| StageError::Data(format!("telescope {tel_id}: {e}")))
            })?;
        let mask = uniform_list(
            &Level::Dl1Images.field("image_mask"),
            Arc::new(BooleanArray::new(pack_bits(&masks), None)),
            n_pixels,
        )?;
        with_columns(&batch, output, vec![mask])
    }

    fn config(&self) -> serde_json::Value {
        self.config.clone()
    }
}

/// Packs flags into an Arrow bitmap eight at a time: eight 0/1 bytes read as a
/// little-endian `u64` and multiplied by `0x0102040810204080` gather their low bits, in
/// order, into the top byte.
fn pack_bits(flags: &[bool]) -> BooleanBuffer {
    let chunks = flags.chunks_exact(8);
    let rest = chunks.remainder();
    let mut bytes = Vec::with_capacity(flags.len().div_ceil(8));
    // Extended from an iterator of known length: no capacity check per byte.
    bytes.extend(chunks.map(|chunk| {
        let word = u64::from_le_bytes(std::array::from_fn(|j| u8::from(chunk[j])));
        (word.wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8
    }));
    if !rest.is_empty() {
        let byte = rest
            .iter()
            .enumerate()
            .fold(0u8, |byte, (j, &flag)| byte | (u8::from(flag) << j));
        bytes.push(byte);
    }
    BooleanBuffer::new(Buffer::from_vec(bytes), 0, flags.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_bits_equal_arrow_s_boolean_array() {
        let mut state = 0x1234_5678_u32;
        for len in [0, 1, 7, 8, 9, 63, 64, 65, 1855, 2 * 1855 + 3] {
            let flags: Vec<bool> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    state >> 31 == 1
                })
                .collect();
            let packed = BooleanArray::new(pack_bits(&flags), None);
            assert_eq!(packed, BooleanArray::from(flags));
        }
    }
}
