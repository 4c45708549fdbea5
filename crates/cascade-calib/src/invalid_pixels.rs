//! Treatment of invalid (broken, HV-disabled) pixels in DL1 images
//! (`ctapipe.image.invalid_pixels`).

use cascade_instrument::Neighbors;
use serde::{Deserialize, Serialize};

/// How to fill the image and peak time of broken pixels, by ctapipe's class name.
/// Default `NeighborAverage`, as ctapipe's `CameraCalibrator`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvalidPixelHandler {
    /// Replace by the average of the valid neighbours, 0 without valid neighbours
    /// (ctapipe `NeighborAverage`).
    #[default]
    NeighborAverage,
    /// Leave broken pixels as extracted (ctapipe `invalid_pixel_handler_type = None`).
    #[serde(rename = "None")]
    Off,
}

/// Whether any pixel is flagged broken: one pass without early exit, which vectorises
/// (a search that stops at the first flag does not, for `bool`s).
pub(crate) fn any_broken(broken_pixels: &[bool]) -> bool {
    broken_pixels
        .iter()
        .fold(false, |any, &broken| any | broken)
}

/// ctapipe `NeighborAverage`: every broken pixel gets the mean image (p.e.) and mean peak
/// time (ns) of its neighbours that are not broken, or 0 when it has none. Sums are taken
/// in `f32` in neighbour order and divided by the count in `f64`, as numpy does there.
pub fn neighbor_average(
    image: &mut [f32],
    peak_time: &mut [f32],
    broken_pixels: &[bool],
    neighbors: &Neighbors,
) {
    for pixel in (0..image.len()).filter(|&pixel| broken_pixels[pixel]) {
        let mut image_sum = 0.0_f32;
        let mut time_sum = 0.0_f32;
        let mut count = 0_u32;
        for &neighbor in neighbors.of(pixel) {
            let neighbor = neighbor as usize;
            if !broken_pixels[neighbor] {
                image_sum += image[neighbor];
                time_sum += peak_time[neighbor];
                count += 1;
            }
        }
        let mean = |sum: f32| {
            if count > 0 {
                (f64::from(sum) / f64::from(count)) as f32
            } else {
                0.0
            }
        };
        image[pixel] = mean(image_sum);
        peak_time[pixel] = mean(time_sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_pixels_get_the_mean_of_valid_neighbors() {
        // Chain 0 - 1 - 2 - 3, pixel 4 isolated; 1 and 4 broken, 2 broken too.
        let neighbors = Neighbors::from_lists(&[vec![1], vec![0, 2], vec![1, 3], vec![2], vec![]]);
        let mut image = [2.0_f32, 100.0, 100.0, 6.0, 100.0];
        let mut time = [1.0_f32, 100.0, 100.0, 3.0, 100.0];
        let broken = [false, true, true, false, true];
        neighbor_average(&mut image, &mut time, &broken, &neighbors);
        assert_eq!(image, [2.0, 2.0, 6.0, 6.0, 0.0]);
        assert_eq!(time, [1.0, 1.0, 3.0, 3.0, 0.0]);
    }
}
