//! Arrow helpers shared by the stages: pixel-array columns as contiguous 2-D data.
//!
//! Per-pixel quantities are `List` columns whose rows all have the same length within a
//! batch (a batch holds one telescope type), so the child values are one contiguous
//! row-major `[event][pixel]` array: kernels read and write them as slices, never per row.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, PrimitiveArray, RecordBatch};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{ArrowPrimitiveType, DataType, FieldRef, SchemaRef};
use cascade_runtime::StageError;

/// A list column from contiguous values with `row_len` values per row.
pub fn uniform_list(
    field: &FieldRef,
    values: ArrayRef,
    row_len: usize,
) -> Result<ArrayRef, StageError> {
    let DataType::List(item) = field.data_type() else {
        return Err(StageError::Data(format!(
            "column {} is not a list",
            field.name()
        )));
    };
    let n_rows = values.len().checked_div(row_len).unwrap_or(0);
    let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(row_len, n_rows));
    Ok(Arc::new(ListArray::try_new(
        Arc::clone(item),
        offsets,
        values,
        None,
    )?))
}

/// The values of a uniform list column as one contiguous slice, and the row length.
///
/// Fails when rows differ in length (a batch must hold one telescope type) or have nulls.
pub fn uniform_list_values<'a, T: ArrowPrimitiveType>(
    batch: &'a RecordBatch,
    column: &str,
) -> Result<(&'a [T::Native], usize), StageError> {
    let array = batch
        .column_by_name(column)
        .ok_or_else(|| StageError::MissingColumn {
            column: column.to_string(),
            expected: format!("List<{}>", T::DATA_TYPE),
        })?;
    let list = array
        .as_list_opt::<i32>()
        .ok_or_else(|| StageError::Data(format!("column {column} is not a list")))?;
    if list.null_count() > 0 {
        return Err(StageError::Data(format!("column {column} has null rows")));
    }
    let offsets = list.value_offsets();
    let (first, last) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
    let n_rows = list.len();
    let row_len = (last - first).checked_div(n_rows).unwrap_or(0);
    if offsets
        .windows(2)
        .any(|w| (w[1] - w[0]) as usize != row_len)
    {
        return Err(StageError::Data(format!(
            "column {column}: rows differ in length; a batch must hold one telescope type"
        )));
    }
    let values = list
        .values()
        .as_any()
        .downcast_ref::<PrimitiveArray<T>>()
        .ok_or_else(|| {
            StageError::Data(format!(
                "column {column} has items of type {}",
                list.value_type()
            ))
        })?;
    Ok((&values.values()[first..last], row_len))
}

/// A primitive column by name.
pub fn primitive<'a, T: ArrowPrimitiveType>(
    batch: &'a RecordBatch,
    column: &str,
) -> Result<&'a PrimitiveArray<T>, StageError> {
    batch
        .column_by_name(column)
        .ok_or_else(|| StageError::MissingColumn {
            column: column.to_string(),
            expected: T::DATA_TYPE.to_string(),
        })?
        .as_primitive_opt::<T>()
        .ok_or_else(|| StageError::Data(format!("column {column} is not {}", T::DATA_TYPE)))
}

/// The batch's columns that also appear in `schema`, by name, in `schema`'s order, followed
/// by `extra` (which must complete `schema`).
pub fn with_columns(
    batch: &RecordBatch,
    schema: &SchemaRef,
    extra: Vec<ArrayRef>,
) -> Result<RecordBatch, StageError> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    let n_kept = schema.fields().len() - extra.len();
    for field in schema.fields().iter().take(n_kept) {
        let column =
            batch
                .column_by_name(field.name())
                .ok_or_else(|| StageError::MissingColumn {
                    column: field.name().clone(),
                    expected: field.data_type().to_string(),
                })?;
        columns.push(Arc::clone(column));
    }
    columns.extend(extra);
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}
