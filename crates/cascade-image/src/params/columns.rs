//! Flat (column name, unit, value) views of parameter results, for writers that build
//! Arrow columns generically.

/// A value of one parameter column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColumnValue {
    /// A float column (NaN where ctapipe writes NaN).
    Float(f64),
    /// An integer column (-1 where ctapipe writes its default).
    Int(i64),
}

impl ColumnValue {
    /// The value as `f64` (integers converted).
    pub fn as_f64(self) -> f64 {
        match self {
            ColumnValue::Float(v) => v,
            ColumnValue::Int(v) => v as f64,
        }
    }
}

/// One column of a parameter family: ctapipe's container prefix and field name (the column
/// is `{prefix}_{name}`), ctapipe's unit string (`""` for dimensionless) and the value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    /// ctapipe's container prefix (`"hillas"`, `"camera_frame_hillas"`, `"leakage"`...).
    pub prefix: &'static str,
    /// ctapipe's field name (`"length"`, `"psi"`...).
    pub name: &'static str,
    /// ctapipe's unit (`"deg"`, `"m"`, `"1 / deg"`, or `""`).
    pub unit: &'static str,
    /// The value.
    pub value: ColumnValue,
}

impl Column {
    /// Float column.
    pub(crate) fn float(
        prefix: &'static str,
        name: &'static str,
        unit: &'static str,
        value: f64,
    ) -> Self {
        Self {
            prefix,
            name,
            unit,
            value: ColumnValue::Float(value),
        }
    }

    /// Integer column.
    pub(crate) fn int(prefix: &'static str, name: &'static str, value: i64) -> Self {
        Self {
            prefix,
            name,
            unit: "",
            value: ColumnValue::Int(value),
        }
    }

    /// The full column name, `{prefix}_{name}` (ctapipe's DL1 parameter table name).
    pub fn full_name(&self) -> String {
        format!("{}_{}", self.prefix, self.name)
    }
}
