//! Border pixels of a camera (ctapipe `CameraGeometry.get_border_pixel_mask`).
//!
//! A pixel is on the border of width 1 when it has fewer neighbours than the pixel with the
//! most neighbours in the camera. The border of width `w > 1` holds every pixel that has a
//! neighbour in the border of width `w - 1` (exactly ctapipe's recursion
//! `(neighbor_matrix & border(w - 1)).any(axis=1)`; a pixel is not its own neighbour).
//! Works from the CSR neighbour lists alone, so it needs `O(n_pixels)` memory for any
//! camera size and layout (hexagonal, square, gapped).

use crate::{CameraGeometry, Neighbors};

/// Border mask of the given width in pixels (ctapipe `get_border_pixel_mask(width)`):
/// `true` for pixels in the border. Width 0 means no border (all `false`).
pub fn get_border_pixel_mask(neighbors: &Neighbors, width: usize) -> Vec<bool> {
    let n_pixels = neighbors.n_pixels();
    if width == 0 || n_pixels == 0 {
        return vec![false; n_pixels];
    }
    // ctapipe sums the sparse neighbour matrix over axis 0: how often each pixel appears in
    // the neighbour lists of others (equal to the list length for symmetric lists).
    let mut n_neighbors = vec![0u32; n_pixels];
    for &j in neighbors.indices() {
        n_neighbors[j as usize] += 1;
    }
    let max_neighbors = n_neighbors.iter().copied().max().unwrap_or(0);
    let mut mask: Vec<bool> = n_neighbors.iter().map(|&n| n < max_neighbors).collect();
    let mut next = vec![false; n_pixels];
    for _ in 1..width {
        for (pixel, out) in next.iter_mut().enumerate() {
            *out = neighbors.of(pixel).iter().any(|&j| mask[j as usize]);
        }
        std::mem::swap(&mut mask, &mut next);
    }
    mask
}

impl Neighbors {
    /// Border mask of the given width in pixels; see [`get_border_pixel_mask`].
    pub fn border_pixel_mask(&self, width: usize) -> Vec<bool> {
        get_border_pixel_mask(self, width)
    }
}

impl CameraGeometry {
    /// Border mask of the given width in pixels (ctapipe
    /// `CameraGeometry.get_border_pixel_mask`); see [`get_border_pixel_mask`].
    pub fn border_pixel_mask(&self, width: usize) -> Vec<bool> {
        get_border_pixel_mask(&self.neighbors, width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x3 square grid with 4-neighbourhood: only the centre has 4 neighbours.
    fn grid3() -> Neighbors {
        let mut lists = Vec::new();
        for row in 0..3i32 {
            for col in 0..3i32 {
                let mut list = Vec::new();
                for (dr, dc) in [(-1, 0), (1, 0), (0, -1), (0, 1)] {
                    let (r, c) = (row + dr, col + dc);
                    if (0..3).contains(&r) && (0..3).contains(&c) {
                        list.push((r * 3 + c) as u32);
                    }
                }
                lists.push(list);
            }
        }
        Neighbors::from_lists(&lists)
    }

    #[test]
    fn width_one_is_every_pixel_with_fewer_neighbours_than_the_maximum() {
        let mask = get_border_pixel_mask(&grid3(), 1);
        let expected: Vec<bool> = (0..9).map(|i| i != 4).collect();
        assert_eq!(mask, expected);
    }

    #[test]
    fn width_two_follows_ctapipes_neighbour_recursion() {
        // every pixel has a border neighbour, including the centre
        assert_eq!(get_border_pixel_mask(&grid3(), 2), vec![true; 9]);
    }

    #[test]
    fn width_zero_and_empty_cameras_have_no_border() {
        assert_eq!(get_border_pixel_mask(&grid3(), 0), vec![false; 9]);
        assert!(get_border_pixel_mask(&Neighbors::default(), 1).is_empty());
    }
}
