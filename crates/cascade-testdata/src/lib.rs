//! Test support for cascade: finds the shared real data (`../shared/data` next to the
//! project root) and reads the ctapipe reference Parquet files into plain Rust vectors.
//!
//! [`allocations`] counts heap allocations for the tests that check that kernels allocate
//! nothing per event.
//!
//! Only tests and benchmarks depend on this crate. It panics with a clear message when the
//! shared data is missing, because a conformance test without its reference must not pass.
#![allow(clippy::unwrap_used)]

pub mod allocations;

use std::path::{Path, PathBuf};

use arrow::array::{
    Array, AsArray, BooleanArray, Float32Array, Float64Array, Int8Array, Int32Array, Int64Array,
    ListArray, StringArray,
};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

/// The stems of the shared sim_telarray files (`<stem>.simtel.zst|gz`), sorted.
pub const STEMS: [&str; 8] = [
    "gamma_prod6_lst_nectarcam",
    "gamma_south_lsts",
    "hess1u_gamma",
    "hex_7987px_hv_disabled",
    "lst_muons",
    "proton_lst_flashcam_run201",
    "proton_north_alpha_run201",
    "square_40k_pixels",
];

/// `../shared/data` next to the project root (override with `CASCADE_SHARED_DATA`).
///
/// The root is searched upwards from the directory of the package under test, which
/// `cargo test` sets in `CARGO_MANIFEST_DIR` at run time, so a test binary built for one
/// checkout (build caches are shared between clones) finds the data of the checkout it runs
/// in; the directory this crate was compiled in is the fallback.
pub fn data_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CASCADE_SHARED_DATA") {
        return PathBuf::from(dir);
    }
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let found = start
        .ancestors()
        .map(|dir| dir.join("../shared/data"))
        .find(|dir| dir.is_dir());
    match found {
        Some(dir) => dir,
        None => panic!(
            "shared data not found in ../shared/data above {} (set CASCADE_SHARED_DATA)",
            start.display()
        ),
    }
}

/// Path of the sim_telarray file with the given stem.
pub fn simtel_path(stem: &str) -> PathBuf {
    let dir = data_dir().join("simtel");
    for ext in ["simtel.zst", "simtel.gz"] {
        let path = dir.join(format!("{stem}.{ext}"));
        if path.exists() {
            return path;
        }
    }
    panic!("no sim_telarray file for stem {stem} in {}", dir.display());
}

/// Path of a reference file, e.g. `reference_path("hess1u_gamma", "dl1")`.
pub fn reference_path(stem: &str, kind: &str) -> PathBuf {
    data_dir()
        .join("reference")
        .join(format!("{stem}.{kind}.parquet"))
}

/// A whole reference table in memory (the reference files are small).
pub struct Table {
    batch: RecordBatch,
}

impl Table {
    /// Reads `<stem>.<kind>.parquet` (kind: geometry, dl1, cleaning, dl2).
    pub fn reference(stem: &str, kind: &str) -> Self {
        Self::read(&reference_path(stem, kind))
    }

    /// Reads any Parquet file into one table.
    pub fn read(path: &Path) -> Self {
        let file = std::fs::File::open(path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .with_batch_size(1 << 20)
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        let schema = batches
            .first()
            .map(|b| b.schema())
            .unwrap_or_else(|| panic!("{} is empty", path.display()));
        let batch = arrow::compute::concat_batches(&schema, &batches).unwrap();
        Self { batch }
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// Column names.
    pub fn column_names(&self) -> Vec<String> {
        self.batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// True when the table has this column.
    pub fn has(&self, name: &str) -> bool {
        self.batch.schema().index_of(name).is_ok()
    }

    fn column(&self, name: &str) -> &dyn Array {
        self.batch
            .column_by_name(name)
            .unwrap_or_else(|| panic!("reference has no column {name}"))
            .as_ref()
    }

    /// A numeric column as f64 (nulls become NaN).
    pub fn f64(&self, name: &str) -> Vec<f64> {
        to_f64(self.column(name))
    }

    /// An integer column as i64 (panics on nulls).
    pub fn i64(&self, name: &str) -> Vec<i64> {
        to_i64(self.column(name))
    }

    /// A boolean column.
    pub fn bool(&self, name: &str) -> Vec<bool> {
        let array = self
            .column(name)
            .as_any()
            .downcast_ref::<BooleanArray>()
            .unwrap();
        (0..array.len())
            .map(|i| array.is_valid(i) && array.value(i))
            .collect()
    }

    /// A string column.
    pub fn str(&self, name: &str) -> Vec<String> {
        let array = self
            .column(name)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        (0..array.len())
            .map(|i| array.value(i).to_string())
            .collect()
    }

    /// A list column of numbers, one `Vec<f64>` per row (null rows become empty).
    pub fn list_f64(&self, name: &str) -> Vec<Vec<f64>> {
        self.list(name, to_f64)
    }

    /// A list column of integers, one `Vec<i64>` per row.
    pub fn list_i64(&self, name: &str) -> Vec<Vec<i64>> {
        self.list(name, to_i64)
    }

    /// A list column of booleans, one `Vec<bool>` per row.
    pub fn list_bool(&self, name: &str) -> Vec<Vec<bool>> {
        self.list(name, |a| {
            let a = a.as_boolean();
            (0..a.len()).map(|i| a.is_valid(i) && a.value(i)).collect()
        })
    }

    fn list<T>(&self, name: &str, convert: impl Fn(&dyn Array) -> Vec<T>) -> Vec<Vec<T>> {
        let list = self
            .column(name)
            .as_any()
            .downcast_ref::<ListArray>()
            .unwrap();
        (0..list.len())
            .map(|i| {
                if list.is_null(i) {
                    Vec::new()
                } else {
                    convert(list.value(i).as_ref())
                }
            })
            .collect()
    }
}

fn to_f64(array: &dyn Array) -> Vec<f64> {
    let nan_if_null = |i: usize, v: f64| if array.is_null(i) { f64::NAN } else { v };
    match array.data_type() {
        DataType::Float64 => {
            let a = array.as_any().downcast_ref::<Float64Array>().unwrap();
            (0..a.len()).map(|i| nan_if_null(i, a.value(i))).collect()
        }
        DataType::Float32 => {
            let a = array.as_any().downcast_ref::<Float32Array>().unwrap();
            (0..a.len())
                .map(|i| nan_if_null(i, f64::from(a.value(i))))
                .collect()
        }
        _ => to_i64(array).into_iter().map(|v| v as f64).collect(),
    }
}

fn to_i64(array: &dyn Array) -> Vec<i64> {
    assert_eq!(array.null_count(), 0, "integer column with nulls");
    match array.data_type() {
        DataType::Int64 => array
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec(),
        DataType::Int32 => {
            let a = array.as_any().downcast_ref::<Int32Array>().unwrap();
            a.values().iter().map(|&v| i64::from(v)).collect()
        }
        DataType::Int8 => {
            let a = array.as_any().downcast_ref::<Int8Array>().unwrap();
            a.values().iter().map(|&v| i64::from(v)).collect()
        }
        other => {
            let cast = arrow::compute::cast(array, &DataType::Int64)
                .unwrap_or_else(|e| panic!("cannot read {other} as i64: {e}"));
            cast.as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .to_vec()
        }
    }
}
