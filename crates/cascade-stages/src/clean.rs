//! `kind = "tailcuts_clean"`: ctapipe's two-threshold tail-cuts cleaning
//! (`cascade_image::cleaning::tailcuts_clean`), per telescope type.
//!
//! Input: DL1 images (`image`). Output: the input plus `image_mask`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::buffer::{BooleanBuffer, Buffer};
use arrow::datatypes::{DataType, Float32Type, Int16Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use cascade_image::cleaning::{CleaningWorkspace, TailcutsParams, tailcuts_clean};
use cascade_instrument::Neighbors;
use cascade_pipeline::{BuildContext, BuildError, BuiltStage, PerTelescope, TypedFactory};
use cascade_runtime::{BatchStage, MapStage, StageError, StageRole, check_column};
use cascade_schema::Level;
use rayon::prelude::*;

use crate::columns::{primitive, uniform_list, uniform_list_values, with_columns};

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

thread_local! {
    /// Per-thread scratch of the cleaning kernel, reused across events and batches.
    static WORKSPACE: RefCell<CleaningWorkspace> = RefCell::default();
}

/// The cleaning stage's entry in the stage registry.
pub fn factory() -> TypedFactory<TailcutsConfig> {
    TypedFactory::new(
        "tailcuts_clean",
        StageRole::Transform,
        "Tail-cuts image cleaning (ctapipe tailcuts_clean) on any camera geometry; adds `image_mask`. \
         Thresholds can differ per telescope type through overrides.",
        build,
    )
}

fn build(
    config: PerTelescope<TailcutsConfig>,
    context: &BuildContext,
) -> Result<BuiltStage, BuildError> {
    let mut telescopes = BTreeMap::new();
    for (&tel_id, telescope) in &context.subarray.telescopes {
        let c = config.get(tel_id);
        if c.boundary_threshold_pe > c.picture_threshold_pe {
            return Err(BuildError::option(
                "boundary_threshold_pe",
                "must not exceed picture_threshold_pe",
            ));
        }
        let params = TailcutsParams {
            picture_threshold_pe: c.picture_threshold_pe,
            boundary_threshold_pe: c.boundary_threshold_pe,
            min_number_picture_neighbors: c.min_number_picture_neighbors,
            keep_isolated_pixels: c.keep_isolated_pixels,
        };
        telescopes.insert(
            tel_id,
            (params, Arc::new(telescope.camera.neighbors.clone())),
        );
    }
    let stage = TailcutsClean {
        config: config.default_value().clone(),
        telescopes,
    };
    Ok(BuiltStage::new(Arc::new(MapStage::new(stage))))
}

/// The tail-cuts cleaning stage.
#[derive(Debug)]
pub struct TailcutsClean {
    config: TailcutsConfig,
    telescopes: BTreeMap<u16, (TailcutsParams, Arc<Neighbors>)>,
}

impl BatchStage for TailcutsClean {
    fn kind(&self) -> &'static str {
        "tailcuts_clean"
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef, StageError> {
        check_column(input, "tel_id", &DataType::Int16)?;
        check_column(input, "image", Level::Dl1Images.field("image").data_type())?;
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
        let mut masks = vec![false; images.len()];
        masks
            .par_chunks_mut(n_pixels.max(1))
            .enumerate()
            .try_for_each(|(event, mask)| {
                let tel_id = tel_ids.value(event) as u16;
                let (params, neighbors) = self.telescopes.get(&tel_id).ok_or_else(|| {
                    StageError::Data(format!("telescope {tel_id} is not in the instrument"))
                })?;
                let image = &images[event * n_pixels..(event + 1) * n_pixels];
                WORKSPACE
                    .with_borrow_mut(|workspace| {
                        tailcuts_clean(neighbors, image, params, workspace, mask)
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
        serde_json::to_value(&self.config).unwrap_or_default()
    }
}

/// Packs flags into an Arrow bitmap eight at a time: eight 0/1 bytes read as a
/// little-endian `u64` and multiplied by `0x0102040810204080` gather their low bits, in
/// order, into the top byte.
fn pack_bits(flags: &[bool]) -> BooleanBuffer {
    let mut bytes = Vec::with_capacity(flags.len().div_ceil(8));
    let chunks = flags.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        let word = u64::from_le_bytes(std::array::from_fn(|j| u8::from(chunk[j])));
        bytes.push((word.wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8);
    }
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
