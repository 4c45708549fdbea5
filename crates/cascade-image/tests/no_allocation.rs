//! The cleaning and parameter kernels allocate nothing per event once their workspaces have
//! grown: the reference images of four shared files (lst_muons' muon rings, whose timing fit
//! is the costliest, prod6 LSTCam and NectarCam showers, the 7987-pixel camera with broken
//! pixels, the 40,000-pixel square camera) through every cleaning and the full parameter
//! set make no heap allocation on a second pass.

mod common;

use cascade_image::cleaning::{
    CleaningWorkspace, FactParams, TailcutsParams, TimeConstrainedParams, fact_image_cleaning,
    mars_cleaning_1st_pass, number_of_islands, tailcuts_clean, time_constrained_clean,
};
use cascade_image::params::{Frame, ParameterWorkspace, ParametrizationGeometry, image_parameters};
use cascade_testdata::Table;
use cascade_testdata::allocations::{CountingAllocator, allocations_during};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const STEMS: [&str; 4] = [
    "lst_muons",
    "gamma_prod6_lst_nectarcam",
    "hex_7987px_hv_disabled",
    "square_40k_pixels",
];

/// One telescope event's image with its camera and output buffers.
struct TelescopeImage {
    /// Index into the geometries.
    camera: usize,
    image: Vec<f32>,
    peak_time: Vec<f32>,
    mask: Vec<bool>,
    labels: Vec<i32>,
}

/// The workspaces of every kernel.
#[derive(Default)]
struct Workspaces {
    cleaning: CleaningWorkspace,
    parameters: ParameterWorkspace,
}

/// One pass over `images`: every cleaning, islands, then all parameters of the tail-cuts
/// mask. Returns the number of images with a finite Hillas intensity (so that the
/// parameters are really computed).
fn clean_and_parametrise(
    images: &mut [TelescopeImage],
    geometries: &[ParametrizationGeometry],
    workspaces: &mut Workspaces,
) -> usize {
    let mut parametrised = 0;
    for event in images {
        let geometry = &geometries[event.camera];
        let neighbors = geometry.neighbors();
        let cleaning = &mut workspaces.cleaning;
        let (image, peak_time, mask) = (&event.image, &event.peak_time, &mut event.mask);
        let params = FactParams::default();
        fact_image_cleaning(neighbors, image, peak_time, &params, cleaning, mask)
            .expect("fact cleaning");
        let params = TimeConstrainedParams::default();
        time_constrained_clean(neighbors, image, peak_time, &params, cleaning, mask)
            .expect("time-constrained cleaning");
        let params = TailcutsParams::default();
        mars_cleaning_1st_pass(neighbors, image, &params, cleaning, mask).expect("mars");
        tailcuts_clean(neighbors, image, &params, cleaning, mask).expect("tailcuts");
        number_of_islands(neighbors, mask, &mut event.labels, cleaning).expect("islands");
        let parameters = image_parameters(
            geometry,
            image,
            Some(peak_time.as_slice()),
            mask,
            &mut workspaces.parameters,
        )
        .expect("parameters");
        parametrised += usize::from(parameters.hillas.intensity.is_finite());
    }
    parametrised
}

#[test]
fn cleaning_and_parameters_allocate_nothing_per_event() {
    let mut geometries = Vec::new();
    let mut images = Vec::new();
    for stem in STEMS {
        let cameras = common::cameras(stem);
        let table = Table::reference(stem, "dl1");
        let tel_ids = table.i64("tel_id");
        let peak_times = common::f32_lists(&table, "peak_time");
        let mut camera_of_tel = std::collections::HashMap::new();
        for (row, image) in common::f32_lists(&table, "image").into_iter().enumerate() {
            let camera = *camera_of_tel.entry(tel_ids[row]).or_insert_with(|| {
                geometries.push(cameras[&tel_ids[row]].geometry(Frame::Telescope));
                geometries.len() - 1
            });
            let n_pixels = image.len();
            images.push(TelescopeImage {
                camera,
                image,
                peak_time: peak_times[row].clone(),
                mask: vec![false; n_pixels],
                labels: vec![0; n_pixels],
            });
        }
    }
    assert!(images.len() >= 40, "{} telescope events", images.len());

    let mut workspaces = Workspaces::default();
    // the first pass grows the workspaces to the largest camera and image
    let parametrised = clean_and_parametrise(&mut images, &geometries, &mut workspaces);
    assert!(
        parametrised >= 30,
        "only {parametrised} images survive cleaning"
    );
    let (again, allocations) =
        allocations_during(|| clean_and_parametrise(&mut images, &geometries, &mut workspaces));
    assert_eq!(again, parametrised);
    assert_eq!(
        allocations,
        0,
        "{allocations} allocations in a pass over {} telescope events",
        images.len()
    );
}
