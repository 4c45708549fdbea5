//! The camera layout both AVX2 kernels of the peak finder walk: the pixels in tiles of
//! [`TILE_PIXELS`] and, within a tile, in groups of equal numbers of usable neighbours, with
//! where each neighbour's row starts, built once per camera, waveform length and set of
//! broken pixels and kept from event to event.

use std::ops::Range;

use cascade_instrument::NeighborsId;

use super::super::avx2::pipelined;
use super::{Event, TILE_PIXELS};

/// The [`Layout`]s of up to [`Layouts::CAPACITY`] telescopes (cameras, waveform
/// lengths and sets of broken pixels), most recently used first: the batches of a file
/// with several camera types alternate between them, and every telescope has its own
/// broken pixels, so that the telescopes of one batch alternate too. Rebuilding a
/// layout at each change cost 8 % of the calibration of `gamma_prod6_lst_nectarcam`
/// (2 cameras) and 18 % of `proton_north_alpha_run201` (9 telescopes). A layout of an
/// 1855-pixel camera takes ~55 kB; finding one compares the broken-pixel flags of the
/// kept layouts of the same camera (a few ns each, most differ early).
#[derive(Debug, Clone, Default)]
pub(super) struct Layouts(Vec<Layout>);

impl Layouts {
    const CAPACITY: usize = 64;

    /// The layout of `event` with `n_pixels` pixels, built unless one of the kept
    /// layouts is it; `None` when the event cannot have one (see [`Layout::build`]).
    pub(super) fn of<S: ?Sized>(
        &mut self,
        event: &Event<'_, S>,
        n_pixels: usize,
    ) -> Option<&Layout> {
        let layouts = &mut self.0;
        match layouts
            .iter()
            .position(|layout| layout.is_of(event, n_pixels))
        {
            Some(used) => layouts[..=used].rotate_right(1),
            None => {
                if layouts.len() < Self::CAPACITY {
                    layouts.push(Layout::default());
                }
                // The new or least recently used one becomes the first.
                layouts.rotate_right(1);
                if !layouts[0].build(event, n_pixels) {
                    return None;
                }
            }
        }
        layouts.first()
    }
}

/// The pixels of a camera in tiles of [`TILE_PIXELS`] and, within a tile, grouped by
/// their number of usable neighbours (those not broken), with where each neighbour's
/// row starts in an event's waveforms: built for one set of neighbour lists, broken
/// pixels, number of pixels and waveform length, and reused as long as the calls have
/// the same. Pixels of a group are done by one loop whose number of additions is
/// fixed, so that nothing in it is checked per pixel.
#[derive(Debug, Clone, Default)]
pub(super) struct Layout {
    /// What the layout was built for: the neighbour lists, samples per pixel and
    /// pixels; `None` before the first build.
    key: Option<(NeighborsId, usize, usize)>,
    /// The broken pixels it was built for (the first `n_pixels` flags).
    broken: Vec<bool>,
    /// Every pixel once, tile after tile, group after group within a tile, ascending
    /// within a group.
    pub(super) pixels: Vec<u32>,
    /// The rows of the neighbours of `pixels`, in the same order, `n_neighbors` per
    /// pixel: the index in the waveforms of each neighbour's first sample. Every
    /// neighbour is one of the `n_pixels` pixels.
    pub(super) rows: Vec<u32>,
    /// Tile after tile, by number of neighbours within a tile.
    pub(super) groups: Vec<Group>,
    pub(super) tiles: Vec<Tile>,
}

/// The pixels `pixels` of the camera (`TILE_PIXELS` of them but in the last tile),
/// whose groups are `groups[groups]`.
#[derive(Debug, Clone)]
pub(super) struct Tile {
    pub(super) pixels: Range<usize>,
    pub(super) groups: Range<usize>,
}

/// The pixels of a [`Layout`] that have `n_neighbors` neighbours:
/// `pixels[first_pixel..first_pixel + n]`, their rows from `rows[first_row]` on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Group {
    pub(super) n_neighbors: usize,
    pub(super) first_pixel: usize,
    pub(super) n: usize,
    pub(super) first_row: usize,
}

impl Layout {
    /// The pixels of `group` (one of `groups`) and their neighbours' rows.
    pub(super) fn members(&self, group: &Group) -> Members<'_> {
        Members {
            pixels: &self.pixels[group.first_pixel..group.first_pixel + group.n],
            rows: &self.rows[group.first_row..group.first_row + group.n * group.n_neighbors],
            n_neighbors: group.n_neighbors,
        }
    }

    /// Whether this is the layout of `event` with `n_pixels` pixels.
    fn is_of<S: ?Sized>(&self, event: &Event<'_, S>, n_pixels: usize) -> bool {
        self.key == Some((event.neighbors.id(), event.n_samples, n_pixels))
            && event.broken_pixels.get(..n_pixels) == Some(&self.broken[..])
    }

    /// Makes the layout that of `event` with `n_pixels` pixels; false when its
    /// neighbours include pixels beyond `n_pixels`, it has fewer broken-pixel flags
    /// than pixels, or it has more than `u32::MAX` samples (those take the plain path).
    fn build<S: ?Sized>(&mut self, event: &Event<'_, S>, n_pixels: usize) -> bool {
        let n_samples = event.n_samples;
        let Some(broken) = event.broken_pixels.get(..n_pixels) else {
            return false;
        };
        let key = (event.neighbors.id(), n_samples, n_pixels);
        self.key = None;
        if n_pixels
            .checked_mul(n_samples)
            .is_none_or(|size| u32::try_from(size).is_err())
            || event.neighbors.n_pixels() < n_pixels
        {
            return false;
        }
        let usable = |pixel: usize| {
            let neighbors = event.neighbors.of(pixel).iter().map(|&n| n as usize);
            neighbors.filter(|&neighbor| neighbor >= n_pixels || !broken[neighbor])
        };
        if (0..n_pixels).any(|pixel| usable(pixel).any(|neighbor| neighbor >= n_pixels)) {
            return false;
        }
        // Group by tile, then by number of neighbours (a counting sort on both): the
        // groups' sizes, their places, then every pixel in the next free place of its
        // group.
        let counts: Vec<usize> = (0..n_pixels).map(|pixel| usable(pixel).count()).collect();
        let n_counts = counts.iter().copied().max().unwrap_or(0) + 1;
        let group_of = |pixel: usize| pixel / TILE_PIXELS * n_counts + counts[pixel];
        let mut sizes = vec![0; n_pixels.div_ceil(TILE_PIXELS) * n_counts];
        for pixel in 0..n_pixels {
            sizes[group_of(pixel)] += 1;
        }
        self.groups.clear();
        self.tiles.clear();
        let mut free = vec![(0, 0); sizes.len()];
        let (mut first_pixel, mut first_row) = (0, 0);
        for (tile, tile_sizes) in sizes.chunks_exact(n_counts).enumerate() {
            let first_group = self.groups.len();
            for (n_neighbors, &n) in tile_sizes.iter().enumerate().filter(|(_, n)| **n > 0) {
                free[tile * n_counts + n_neighbors] = (first_pixel, first_row);
                self.groups.push(Group {
                    n_neighbors,
                    first_pixel,
                    n,
                    first_row,
                });
                first_pixel += n;
                first_row += n * n_neighbors;
            }
            self.tiles.push(Tile {
                pixels: tile * TILE_PIXELS..((tile + 1) * TILE_PIXELS).min(n_pixels),
                groups: first_group..self.groups.len(),
            });
        }
        self.pixels.clear();
        self.pixels.resize(n_pixels, 0);
        self.rows.clear();
        self.rows.resize(first_row, 0);
        for (pixel, &count) in counts.iter().enumerate() {
            let (place, first_row) = &mut free[group_of(pixel)];
            self.pixels[*place] = pixel as u32;
            let rows = &mut self.rows[*first_row..*first_row + count];
            for (row, neighbor) in rows.iter_mut().zip(usable(pixel)) {
                // No overflow: below `n_pixels * n_samples <= u32::MAX`.
                *row = (neighbor * n_samples) as u32;
            }
            *place += 1;
            *first_row += count;
        }
        self.broken.clear();
        self.broken.extend_from_slice(broken);
        self.key = Some(key);
        true
    }
}

/// One group of a [`Layout`]: its pixels, and their neighbours' rows, `n_neighbors`
/// per pixel.
#[derive(Clone, Copy)]
pub(super) struct Members<'a> {
    pub(super) pixels: &'a [u32],
    pub(super) rows: &'a [u32],
    pub(super) n_neighbors: usize,
}

/// [`pipelined`] over the pixels of `group` and their neighbours' rows: `start(pixel,
/// rows)` then `finish`, with `K` rows per pixel when `K > 0` (a constant, so that the
/// loops over them unroll), `group.n_neighbors` (at least one) otherwise.
#[inline(always)]
pub(super) fn pipelined_members<'a, const K: usize, T: Copy>(
    group: Members<'a>,
    empty: T,
    start: &mut impl FnMut(u32, &'a [u32]) -> T,
    finish: impl FnMut(T),
) {
    if K > 0 {
        let members = group.pixels.iter().zip(group.rows.as_chunks::<K>().0);
        pipelined(members, empty, |(&pixel, rows)| start(pixel, rows), finish);
    } else {
        let rows = group.rows.chunks_exact(group.n_neighbors);
        let members = group.pixels.iter().zip(rows);
        pipelined(members, empty, |(&pixel, rows)| start(pixel, rows), finish);
    }
}
