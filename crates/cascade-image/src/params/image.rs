//! All image parameters of one telescope event, as ctapipe's `ImageProcessor` computes them
//! (`ImageProcessor._parameterize_image`).

use cascade_instrument::border::get_border_pixel_mask;
use cascade_instrument::{CameraGeometry, Neighbors, PixelShape};

use super::columns::Column;
use super::concentration::{ConcentrationParameters, concentration_of_selected};
use super::hillas::{HillasParameters, hillas_of_selected};
use super::leakage::{LeakageParameters, leakage_of_selected};
use super::morphology::{MorphologyParameters, morphology_of_selected};
use super::statistics::{ImageStatistics, StatisticsWorkspace, statistics_of_selected};
use super::timing::{TimingParameters, TimingWorkspace, timing_of_selected};
use super::{Frame, PixelCoordinates};
use crate::cleaning::CleaningWorkspace;
use crate::error::{ImageError, check_len};
use crate::value::PixelValue;

/// Everything per camera that parametrisation needs, prepared once per telescope type:
/// pixel coordinates in one frame, neighbours and the border masks of width 1 and 2.
#[derive(Debug, Clone, PartialEq)]
pub struct ParametrizationGeometry {
    frame: Frame,
    x: Vec<f64>,
    y: Vec<f64>,
    area: Vec<f64>,
    shape: PixelShape,
    neighbors: Neighbors,
    border_width_1: Vec<bool>,
    border_width_2: Vec<bool>,
}

impl ParametrizationGeometry {
    /// Builds the geometry from pixel coordinates in `frame` (x/y in m and areas in m² in
    /// the camera frame; fov_lon/fov_lat in deg and areas in deg² in the telescope frame),
    /// the pixel shape and the neighbour lists; computes the border masks.
    pub fn new(
        frame: Frame,
        x: Vec<f64>,
        y: Vec<f64>,
        area: Vec<f64>,
        shape: PixelShape,
        neighbors: Neighbors,
    ) -> Result<Self, ImageError> {
        let n = x.len();
        check_len("pixel y", n, y.len())?;
        check_len("pixel area", n, area.len())?;
        check_len("neighbors", n, neighbors.n_pixels())?;
        let border_width_1 = get_border_pixel_mask(&neighbors, 1);
        let border_width_2 = get_border_pixel_mask(&neighbors, 2);
        Ok(Self {
            frame,
            x,
            y,
            area,
            shape,
            neighbors,
            border_width_1,
            border_width_2,
        })
    }

    /// The camera-frame geometry (x/y in m, areas in m²) of a camera. ctapipe's
    /// `ImageProcessor` parametrises in the telescope frame by default: build that with
    /// [`ParametrizationGeometry::new`] from the transformed coordinates.
    pub fn camera_frame(camera: &CameraGeometry) -> Result<Self, ImageError> {
        Self::new(
            Frame::Camera,
            camera.pix_x_m.clone(),
            camera.pix_y_m.clone(),
            camera.pix_area_m2.clone(),
            camera.pix_type,
            camera.neighbors.clone(),
        )
    }

    /// Number of pixels.
    pub fn n_pixels(&self) -> usize {
        self.x.len()
    }

    /// Frame of the coordinates.
    pub fn frame(&self) -> Frame {
        self.frame
    }

    /// Borrowed view of the pixel coordinates.
    pub fn pixels(&self) -> PixelCoordinates<'_> {
        PixelCoordinates {
            frame: self.frame,
            x: &self.x,
            y: &self.y,
            area: &self.area,
            shape: self.shape,
        }
    }

    /// Neighbour lists.
    pub fn neighbors(&self) -> &Neighbors {
        &self.neighbors
    }

    /// Border mask of width 1 (ctapipe `get_border_pixel_mask(1)`).
    pub fn border_width_1(&self) -> &[bool] {
        &self.border_width_1
    }

    /// Border mask of width 2 (ctapipe `get_border_pixel_mask(2)`).
    pub fn border_width_2(&self) -> &[bool] {
        &self.border_width_2
    }
}

/// Reusable scratch memory of [`image_parameters`]; one per worker thread.
#[derive(Debug, Default, Clone)]
pub struct ParameterWorkspace {
    /// Scratch of the island search (morphology).
    pub cleaning: CleaningWorkspace,
    /// Scratch of the timing fit.
    pub timing: TimingWorkspace,
    /// Scratch of the statistics.
    pub statistics: StatisticsWorkspace,
    /// Indices of the selected pixels, ascending: the mask is scanned once per image and
    /// every parameter runs over this list.
    selected: Vec<u32>,
}

/// All DL1 image parameters of one telescope event (ctapipe `ImageParametersContainer`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageParameters {
    /// Hillas parameters.
    pub hillas: HillasParameters,
    /// Timing parameters.
    pub timing: TimingParameters,
    /// Leakage.
    pub leakage: LeakageParameters,
    /// Concentration.
    pub concentration: ConcentrationParameters,
    /// Morphology.
    pub morphology: MorphologyParameters,
    /// Statistics of the selected image values (p.e.).
    pub intensity_statistics: ImageStatistics,
    /// Statistics of the selected peak times (ns).
    pub peak_time_statistics: ImageStatistics,
}

impl ImageParameters {
    /// ctapipe's default container: NaN everywhere, morphology counts -1. Used for images
    /// that fail the image quality query.
    pub fn missing(frame: Frame) -> Self {
        Self {
            hillas: HillasParameters::nan(frame),
            timing: TimingParameters::nan(frame),
            leakage: LeakageParameters::nan(),
            concentration: ConcentrationParameters::nan(),
            morphology: MorphologyParameters::missing(),
            intensity_statistics: ImageStatistics::nan(),
            peak_time_statistics: ImageStatistics::nan(),
        }
    }

    /// All columns, family by family in ctapipe's order (hillas, timing, leakage,
    /// concentration, morphology, intensity, peak_time); see [`Column::full_name`].
    pub fn columns(&self) -> Vec<Column> {
        let mut columns = Vec::with_capacity(Self::N_COLUMNS);
        self.for_each_column(|column| columns.push(column));
        columns
    }

    /// Number of [`ImageParameters::columns`].
    pub const N_COLUMNS: usize = 14 + 3 + 4 + 3 + 5 + 6 + 6;

    /// Calls `f` with every column in the order of [`ImageParameters::columns`], without
    /// allocating (for writers that fill one column builder per parameter).
    pub fn for_each_column(&self, mut f: impl FnMut(Column)) {
        self.hillas.columns().into_iter().for_each(&mut f);
        self.timing.columns().into_iter().for_each(&mut f);
        self.leakage.columns().into_iter().for_each(&mut f);
        self.concentration.columns().into_iter().for_each(&mut f);
        self.morphology.columns().into_iter().for_each(&mut f);
        let intensity = ImageStatistics::INTENSITY_PREFIX;
        let peak_time = ImageStatistics::PEAK_TIME_PREFIX;
        self.intensity_statistics
            .columns(intensity)
            .into_iter()
            .for_each(&mut f);
        self.peak_time_statistics
            .columns(peak_time)
            .into_iter()
            .for_each(&mut f);
    }
}

/// ctapipe's default `ImageQualityQuery`: the selected image has positive total intensity
/// (`size_greater_0`) and more than one pixel (`at_least_2_pixels`).
pub fn passes_image_quality<T: PixelValue>(image: &[T], mask: &[bool]) -> bool {
    let (mut n, mut sum) = (0usize, 0.0);
    for (&value, &selected) in image.iter().zip(mask) {
        if selected {
            n += 1;
            sum += value.to_f64();
        }
    }
    sum > 0.0 && n > 1
}

/// Writes the indices of the pixels selected by `mask` to `selected`, ascending
/// (branch-free: every index is written, the length grows only for selected pixels).
fn list_selected(mask: &[bool], selected: &mut Vec<u32>) {
    selected.clear();
    selected.resize(mask.len(), 0);
    let mut len = 0;
    for (pixel, &is_selected) in mask.iter().enumerate() {
        selected[len] = pixel as u32;
        len += usize::from(is_selected);
    }
    selected.truncate(len);
}

/// All image parameters of the pixels selected by `mask`, as ctapipe's `ImageProcessor`
/// computes them: if [`passes_image_quality`] holds, Hillas, leakage, concentration,
/// morphology and intensity statistics, plus timing and peak-time statistics when
/// `peak_time` (ns) is given (NaN otherwise); else [`ImageParameters::missing`].
/// `image` in p.e.
pub fn image_parameters<T: PixelValue, U: PixelValue>(
    geometry: &ParametrizationGeometry,
    image: &[T],
    peak_time: Option<&[U]>,
    mask: &[bool],
    workspace: &mut ParameterWorkspace,
) -> Result<ImageParameters, ImageError> {
    check_inputs(geometry, image, peak_time)?;
    check_len("mask", geometry.n_pixels(), mask.len())?;
    let mut selected = std::mem::take(&mut workspace.selected);
    list_selected(mask, &mut selected);
    let result = parameters_of_listed(geometry, image, peak_time, &selected, workspace);
    workspace.selected = selected;
    result
}

/// [`image_parameters`] of the pixels listed in `selected` (the indices of a mask's `true`
/// entries, strictly ascending), for callers that hold the selection as a list or a
/// bitmap rather than a `&[bool]` mask; the results are the same.
pub fn image_parameters_of_selected<T: PixelValue, U: PixelValue>(
    geometry: &ParametrizationGeometry,
    image: &[T],
    peak_time: Option<&[U]>,
    selected: &[u32],
    workspace: &mut ParameterWorkspace,
) -> Result<ImageParameters, ImageError> {
    check_inputs(geometry, image, peak_time)?;
    let n_pixels = geometry.n_pixels();
    let mut previous = None;
    for (position, &pixel) in selected.iter().enumerate() {
        if previous.is_some_and(|previous| pixel <= previous) || pixel as usize >= n_pixels {
            return Err(ImageError::InvalidSelection {
                position,
                pixel: pixel as usize,
                n_pixels,
            });
        }
        previous = Some(pixel);
    }
    parameters_of_listed(geometry, image, peak_time, selected, workspace)
}

/// Checks that the image and peak times have one entry per pixel of `geometry`.
fn check_inputs<T, U>(
    geometry: &ParametrizationGeometry,
    image: &[T],
    peak_time: Option<&[U]>,
) -> Result<(), ImageError> {
    let n = geometry.n_pixels();
    check_len("image", n, image.len())?;
    if let Some(peak_time) = peak_time {
        check_len("peak_time", n, peak_time.len())?;
    }
    Ok(())
}

/// [`image_parameters`] of checked inputs and a valid list of selected pixels: the mask is
/// never scanned again, every parameter runs over the list.
fn parameters_of_listed<T: PixelValue, U: PixelValue>(
    geometry: &ParametrizationGeometry,
    image: &[T],
    peak_time: Option<&[U]>,
    selected: &[u32],
    workspace: &mut ParameterWorkspace,
) -> Result<ImageParameters, ImageError> {
    let frame = geometry.frame;
    let pixels = || selected.iter().map(|&pixel| pixel as usize);
    // passes_image_quality over the listed pixels, summed in the same order
    let sum: f64 = pixels().fold(0.0, |sum, i| sum + image[i].to_f64());
    if !(sum > 0.0 && selected.len() > 1) {
        return Ok(ImageParameters::missing(frame));
    }
    let coordinates = geometry.pixels();
    let hillas = hillas_of_selected(&coordinates, image, pixels());
    let leakage = leakage_of_selected(
        &geometry.border_width_1,
        &geometry.border_width_2,
        image,
        pixels(),
    );
    let concentration = concentration_of_selected(&coordinates, image, pixels(), &hillas);
    let morphology = morphology_of_selected(&geometry.neighbors, selected, &mut workspace.cleaning);
    let intensity_statistics = statistics_of_selected(image, pixels(), &mut workspace.statistics);
    let (timing, peak_time_statistics) = match peak_time {
        Some(peak_time) => (
            timing_of_selected(
                &coordinates,
                image,
                peak_time,
                pixels(),
                &hillas,
                &mut workspace.timing,
            )?,
            statistics_of_selected(peak_time, pixels(), &mut workspace.statistics),
        ),
        None => (TimingParameters::nan(frame), ImageStatistics::nan()),
    };
    Ok(ImageParameters {
        hillas,
        timing,
        leakage,
        concentration,
        morphology,
        intensity_statistics,
        peak_time_statistics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_each_column_visits_every_column_in_order() {
        let params = ImageParameters::missing(Frame::Telescope);
        let mut visited = Vec::new();
        params.for_each_column(|column| visited.push(column.full_name()));
        assert_eq!(visited.len(), ImageParameters::N_COLUMNS);
        assert_eq!(visited[0], "hillas_intensity");
        assert_eq!(visited[14], "timing_intercept");
        assert_eq!(visited[40], "peak_time_kurtosis");
    }

    #[test]
    fn a_selection_must_be_ascending_and_inside_the_camera() {
        let neighbors = Neighbors::from_lists(&[vec![1], vec![0, 2], vec![1]]);
        let geometry = ParametrizationGeometry::new(
            Frame::Camera,
            vec![0.0, 0.1, 0.2],
            vec![0.0; 3],
            vec![0.01; 3],
            PixelShape::Square,
            neighbors,
        )
        .expect("three pixels");
        let image = [5.0f32, 6.0, 7.0];
        let mut workspace = ParameterWorkspace::default();
        let mut parameters = |selected: &[u32]| {
            image_parameters_of_selected(
                &geometry,
                &image,
                None::<&[f32]>,
                selected,
                &mut workspace,
            )
        };
        assert!(parameters(&[0, 2]).is_ok());
        for (selected, position, pixel) in [(&[1, 1][..], 1, 1), (&[2, 0], 1, 0), (&[0, 3], 1, 3)] {
            assert_eq!(
                parameters(selected),
                Err(ImageError::InvalidSelection {
                    position,
                    pixel,
                    n_pixels: 3
                })
            );
        }
    }
}
