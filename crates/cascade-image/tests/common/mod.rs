//! Shared helpers of the conformance tests: camera geometries from the ctapipe reference
//! `<stem>.geometry.parquet`, and tolerance checks.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;

use cascade_image::params::{Frame, ParametrizationGeometry};
use cascade_instrument::{Neighbors, PixelShape};
use cascade_testdata::Table;

/// One telescope's camera as in the reference geometry table.
pub struct Camera {
    pub name: String,
    pub neighbors: Neighbors,
    pub pix_x_m: Vec<f64>,
    pub pix_y_m: Vec<f64>,
    pub pix_area_m2: Vec<f64>,
    pub fov_lon_deg: Vec<f64>,
    pub fov_lat_deg: Vec<f64>,
    pub area_deg2: Vec<f64>,
    pub shape: PixelShape,
    pub border_width_1: Vec<bool>,
    pub border_width_2: Vec<bool>,
    pub tf_border_width_1: Vec<bool>,
    pub tf_border_width_2: Vec<bool>,
}

impl Camera {
    pub fn n_pixels(&self) -> usize {
        self.pix_x_m.len()
    }

    pub fn geometry(&self, frame: Frame) -> ParametrizationGeometry {
        let (x, y, area) = match frame {
            Frame::Camera => (&self.pix_x_m, &self.pix_y_m, &self.pix_area_m2),
            Frame::Telescope => (&self.fov_lon_deg, &self.fov_lat_deg, &self.area_deg2),
        };
        ParametrizationGeometry::new(
            frame,
            x.clone(),
            y.clone(),
            area.clone(),
            self.shape,
            self.neighbors.clone(),
        )
        .unwrap()
    }
}

fn shape(name: &str) -> PixelShape {
    match name {
        "hexagon" => PixelShape::Hexagon,
        "square" => PixelShape::Square,
        "circle" => PixelShape::Circle,
        other => panic!("unknown pixel shape {other}"),
    }
}

/// All cameras of a reference file, by tel_id.
pub fn cameras(stem: &str) -> HashMap<i64, Camera> {
    let table = Table::reference(stem, "geometry");
    let tel_id = table.i64("tel_id");
    let pix_id = table.i64("pix_id");
    let names = table.str("camera_name");
    let pix_type = table.str("pix_type");
    let neighbors = table.list_i64("neighbors");
    let columns = [
        table.f64("pix_x_m"),
        table.f64("pix_y_m"),
        table.f64("pix_area_m2"),
        table.f64("tf_pix_fov_lon_deg"),
        table.f64("tf_pix_fov_lat_deg"),
        table.f64("tf_pix_area_deg2"),
    ];
    let borders = [
        table.bool("border_width_1"),
        table.bool("border_width_2"),
        table.bool("tf_border_width_1"),
        table.bool("tf_border_width_2"),
    ];
    let mut rows: HashMap<i64, Vec<usize>> = HashMap::new();
    for (row, &tel) in tel_id.iter().enumerate() {
        rows.entry(tel).or_default().push(row);
    }
    rows.into_iter()
        .map(|(tel, mut rows)| {
            rows.sort_by_key(|&r| pix_id[r]);
            for (i, &r) in rows.iter().enumerate() {
                assert_eq!(pix_id[r], i as i64, "pixel ids of tel {tel} are not 0..n");
            }
            let lists: Vec<Vec<u32>> = rows
                .iter()
                .map(|&r| neighbors[r].iter().map(|&j| j as u32).collect())
                .collect();
            let take = |c: &Vec<f64>| rows.iter().map(|&r| c[r]).collect::<Vec<f64>>();
            let take_bool = |c: &Vec<bool>| rows.iter().map(|&r| c[r]).collect::<Vec<bool>>();
            let camera = Camera {
                name: names[rows[0]].clone(),
                neighbors: Neighbors::from_lists(&lists),
                pix_x_m: take(&columns[0]),
                pix_y_m: take(&columns[1]),
                pix_area_m2: take(&columns[2]),
                fov_lon_deg: take(&columns[3]),
                fov_lat_deg: take(&columns[4]),
                area_deg2: take(&columns[5]),
                shape: shape(&pix_type[rows[0]]),
                border_width_1: take_bool(&borders[0]),
                border_width_2: take_bool(&borders[1]),
                tf_border_width_1: take_bool(&borders[2]),
                tf_border_width_2: take_bool(&borders[3]),
            };
            (tel, camera)
        })
        .collect()
}

/// Images of a reference table as f32 (the reference stores ctapipe's float32 images).
pub fn f32_lists(table: &Table, column: &str) -> Vec<Vec<f32>> {
    table
        .list_f64(column)
        .into_iter()
        .map(|row| row.into_iter().map(|v| v as f32).collect())
        .collect()
}

/// True when `ours` agrees with `reference` within 1e-4 relative or 1e-6 absolute, with
/// NaN exactly where the reference is NaN.
pub fn agrees(ours: f64, reference: f64) -> bool {
    if reference.is_nan() || ours.is_nan() {
        return reference.is_nan() && ours.is_nan();
    }
    let diff = (ours - reference).abs();
    diff <= 1e-6 || diff <= 1e-4 * reference.abs()
}
