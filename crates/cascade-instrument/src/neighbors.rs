//! Pixel neighbours from pixel positions, the way ctapipe computes them.
//!
//! ctapipe 0.28 `CameraGeometry.calc_pixel_neighbors(diagonal=False)`: for every pixel,
//! query the `k` nearest other pixels (k = 6 with the L2 norm for hexagonal and circular
//! pixels, k = 4 with the L1 norm for square pixels), take the smallest of those distances
//! `d_min`, and keep the candidates closer than `radius * d_min` (radius 1.4 for hexagons,
//! 1.5 for squares). A camera with a single pixel is its own neighbour. The result is not
//! symmetrised (ctapipe only warns when it is not symmetric).
//!
//! ctapipe uses a KD-tree; here a uniform grid of buckets answers the same exact k-nearest
//! query in O(n) expected time for camera-like (roughly uniform) layouts.

use crate::{Neighbors, PixelShape};

/// Neighbour lists of the pixels at `(pix_x[i], pix_y[i])` (any length unit) with the given
/// shape, following ctapipe's `calc_pixel_neighbors` (see the module docs).
///
/// # Panics
/// If `pix_x` and `pix_y` differ in length.
pub fn compute_neighbors(pix_x: &[f64], pix_y: &[f64], shape: PixelShape) -> Neighbors {
    assert_eq!(pix_x.len(), pix_y.len(), "pix_x and pix_y differ in length");
    let n = pix_x.len();
    if n <= 1 {
        return Neighbors::from_lists(&vec![vec![0u32]; n]);
    }
    let (k, radius, norm) = match shape {
        PixelShape::Hexagon | PixelShape::Circle => (6, 1.4, Norm::L2),
        PixelShape::Square => (4, 1.5, Norm::L1),
    };
    let grid = Grid::new(pix_x, pix_y);
    let mut candidates: Vec<(f64, u32)> = Vec::with_capacity(k + 1);
    let lists: Vec<Vec<u32>> = (0..n)
        .map(|i| {
            grid.k_nearest(pix_x, pix_y, i, k, norm, &mut candidates);
            let Some(&(min_distance, _)) = candidates.first() else {
                return Vec::new();
            };
            candidates
                .iter()
                .filter(|(d, _)| *d < radius * min_distance)
                .map(|&(_, j)| j)
                .collect()
        })
        .collect();
    Neighbors::from_lists(&lists)
}

#[derive(Debug, Clone, Copy)]
enum Norm {
    L1,
    L2,
}

impl Norm {
    fn distance(self, dx: f64, dy: f64) -> f64 {
        match self {
            Norm::L1 => dx.abs() + dy.abs(),
            Norm::L2 => (dx * dx + dy * dy).sqrt(),
        }
    }
}

/// Points bucketed into square cells of side `cell`.
struct Grid {
    x0: f64,
    y0: f64,
    cell: f64,
    nx: usize,
    ny: usize,
    /// CSR layout: points of cell `c` are `points[starts[c]..starts[c + 1]]`.
    starts: Vec<usize>,
    points: Vec<u32>,
}

impl Grid {
    fn new(xs: &[f64], ys: &[f64]) -> Self {
        let finite = |v: &&f64| v.is_finite();
        let (x0, x1) = min_max(xs.iter().filter(finite).copied());
        let (y0, y1) = min_max(ys.iter().filter(finite).copied());
        let n = xs.len() as f64;
        let area = ((x1 - x0) * (y1 - y0)).max(0.0);
        // About two points per cell for a uniform layout; a degenerate (line) layout
        // falls back to the longer side divided into n cells.
        let mut cell = (2.0 * area / n).sqrt();
        if !(cell.is_finite() && cell > 0.0) {
            cell = ((x1 - x0).max(y1 - y0) / n).max(f64::MIN_POSITIVE);
        }
        let cells_along = |extent: f64, cell: f64| {
            ((extent / cell).floor() as usize)
                .saturating_add(1)
                .min(1 << 16)
        };
        // Bound the bucket count for very elongated layouts.
        while cells_along(x1 - x0, cell).saturating_mul(cells_along(y1 - y0, cell))
            > 4 * xs.len() + 16
        {
            cell *= 2.0;
        }
        let nx = cells_along(x1 - x0, cell);
        let ny = cells_along(y1 - y0, cell);
        let mut grid = Grid {
            x0,
            y0,
            cell,
            nx,
            ny,
            starts: vec![0; nx * ny + 1],
            points: Vec::new(),
        };
        let cells: Vec<usize> = xs
            .iter()
            .zip(ys)
            .map(|(&x, &y)| grid.cell_index(x, y))
            .collect();
        for &c in &cells {
            grid.starts[c + 1] += 1;
        }
        for c in 0..nx * ny {
            grid.starts[c + 1] += grid.starts[c];
        }
        let mut fill = grid.starts.clone();
        grid.points = vec![0; xs.len()];
        for (i, &c) in cells.iter().enumerate() {
            grid.points[fill[c]] = i as u32;
            fill[c] += 1;
        }
        grid
    }

    fn coords(&self, x: f64, y: f64) -> (usize, usize) {
        let clamp = |v: f64, n: usize| -> usize {
            if v.is_finite() && v > 0.0 {
                (v as usize).min(n - 1)
            } else {
                0
            }
        };
        (
            clamp((x - self.x0) / self.cell, self.nx),
            clamp((y - self.y0) / self.cell, self.ny),
        )
    }

    fn cell_index(&self, x: f64, y: f64) -> usize {
        let (cx, cy) = self.coords(x, y);
        cy * self.nx + cx
    }

    /// Fills `out` with the `k` nearest points to point `i` (excluding `i`), sorted by
    /// distance then index. Searches rings of cells outwards; every point outside ring `r`
    /// is at least `r * cell` away (in L-inf, hence in L1 and L2).
    fn k_nearest(
        &self,
        xs: &[f64],
        ys: &[f64],
        i: usize,
        k: usize,
        norm: Norm,
        out: &mut Vec<(f64, u32)>,
    ) {
        out.clear();
        let (x, y) = (xs[i], ys[i]);
        let (cx, cy) = self.coords(x, y);
        let max_ring = self.nx.max(self.ny);
        for ring in 0..=max_ring {
            let lo_x = cx.saturating_sub(ring);
            let hi_x = (cx + ring).min(self.nx - 1);
            let lo_y = cy.saturating_sub(ring);
            let hi_y = (cy + ring).min(self.ny - 1);
            for gy in lo_y..=hi_y {
                let on_edge_row = gy + ring == cy || gy == cy + ring;
                let mut visit = |gx: usize| {
                    let c = gy * self.nx + gx;
                    for &j in &self.points[self.starts[c]..self.starts[c + 1]] {
                        if j as usize != i {
                            let d = norm.distance(xs[j as usize] - x, ys[j as usize] - y);
                            insert_candidate(out, k, (d, j));
                        }
                    }
                };
                if on_edge_row {
                    (lo_x..=hi_x).for_each(&mut visit);
                } else {
                    // Inner rows of the ring: only the cells on its left and right edges.
                    if cx >= ring {
                        visit(cx - ring);
                    }
                    if ring > 0 && cx + ring < self.nx {
                        visit(cx + ring);
                    }
                }
            }
            if out.len() == k && out[k - 1].0 <= ring as f64 * self.cell {
                break;
            }
        }
    }
}

/// Keeps `out` as the sorted `k` best (distance, index) pairs.
fn insert_candidate(out: &mut Vec<(f64, u32)>, k: usize, candidate: (f64, u32)) {
    let better = |a: &(f64, u32), b: &(f64, u32)| a.0 < b.0 || (a.0 == b.0 && a.1 < b.1);
    if out.len() == k {
        match out.last() {
            Some(last) if better(&candidate, last) => {
                out.pop();
            }
            _ => return,
        }
    }
    let pos = out
        .iter()
        .position(|c| better(&candidate, c))
        .unwrap_or(out.len());
    out.insert(pos, candidate);
}

fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo <= hi { (lo, hi) } else { (0.0, 0.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute-force version of the same rule.
    fn naive(xs: &[f64], ys: &[f64], shape: PixelShape) -> Vec<Vec<u32>> {
        let (k, radius, norm) = match shape {
            PixelShape::Square => (4, 1.5, Norm::L1),
            _ => (6, 1.4, Norm::L2),
        };
        (0..xs.len())
            .map(|i| {
                let mut all: Vec<(f64, u32)> = (0..xs.len())
                    .filter(|&j| j != i)
                    .map(|j| (norm.distance(xs[j] - xs[i], ys[j] - ys[i]), j as u32))
                    .collect();
                all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                all.truncate(k);
                let min = all[0].0;
                let mut out: Vec<u32> = all
                    .iter()
                    .filter(|c| c.0 < radius * min)
                    .map(|c| c.1)
                    .collect();
                out.sort_unstable();
                out
            })
            .collect()
    }

    fn check(xs: &[f64], ys: &[f64], shape: PixelShape) {
        let fast = compute_neighbors(xs, ys, shape);
        for (i, expected) in naive(xs, ys, shape).iter().enumerate() {
            assert_eq!(fast.of(i), expected.as_slice(), "pixel {i}");
        }
    }

    #[test]
    fn square_grid_has_four_neighbours_inside() {
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for iy in 0..20 {
            for ix in 0..30 {
                xs.push(ix as f64 * 0.01);
                ys.push(iy as f64 * 0.01);
            }
        }
        let neighbors = compute_neighbors(&xs, &ys, PixelShape::Square);
        assert_eq!(neighbors.of(31), &[1, 30, 32, 61]);
        assert_eq!(neighbors.of(0), &[1, 30]);
        check(&xs, &ys, PixelShape::Square);
    }

    #[test]
    fn hex_grid_has_six_neighbours_inside() {
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for row in -10i32..=10 {
            for col in -10i32..=10 {
                xs.push(col as f64 + 0.5 * (row.rem_euclid(2)) as f64);
                ys.push(row as f64 * 3f64.sqrt() / 2.0);
            }
        }
        let neighbors = compute_neighbors(&xs, &ys, PixelShape::Hexagon);
        let center = 10 * 21 + 10;
        assert_eq!(neighbors.of(center).len(), 6);
        check(&xs, &ys, PixelShape::Hexagon);
    }

    #[test]
    fn irregular_layout_matches_brute_force() {
        // Deterministic pseudo-random points with clusters and an outlier.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for _ in 0..500 {
            xs.push(next() * 2.0 - 1.0);
            ys.push(next() * 0.5);
        }
        xs.push(40.0);
        ys.push(-3.0);
        check(&xs, &ys, PixelShape::Hexagon);
        check(&xs, &ys, PixelShape::Square);
    }

    #[test]
    fn single_pixel_is_its_own_neighbour() {
        assert_eq!(
            compute_neighbors(&[0.0], &[0.0], PixelShape::Hexagon).of(0),
            &[0]
        );
        assert_eq!(
            compute_neighbors(&[], &[], PixelShape::Hexagon).n_pixels(),
            0
        );
    }
}
