//! The toy source: deterministic whatever the batch size, one telescope type per batch,
//! and physically sensible truth.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float32Type, Float64Type, Int16Type, Int64Type};
use cascade_stages::toy::{R1Encoding, ToyConfig, ToySource};

/// (event_id, tel_id) -> (waveform sum, true energy)
fn events(batch_size: usize) -> BTreeMap<(i64, i16), (f64, f64)> {
    let config = ToyConfig {
        n_events: 40,
        seed: 7,
        ..ToyConfig::default()
    };
    let source = ToySource::new(config);
    let mut batches: Vec<RecordBatch> = Vec::new();
    source
        .generate(batch_size, |b| {
            batches.push(b);
            true
        })
        .unwrap();
    let mut events = BTreeMap::new();
    for batch in &batches {
        assert!(batch.num_rows() <= batch_size);
        let waveforms = batch.column_by_name("waveform").unwrap().as_list::<i32>();
        let lengths: Vec<usize> = (0..waveforms.len())
            .map(|i| waveforms.value_length(i) as usize)
            .collect();
        assert!(
            lengths.windows(2).all(|w| w[0] == w[1]),
            "a batch mixes telescope types"
        );
        let event_ids = batch
            .column_by_name("event_id")
            .unwrap()
            .as_primitive::<Int64Type>();
        let tel_ids = batch
            .column_by_name("tel_id")
            .unwrap()
            .as_primitive::<Int16Type>();
        let energies = batch
            .column_by_name("true_energy")
            .unwrap()
            .as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            let sum: f64 = waveforms
                .value(row)
                .as_primitive::<Float32Type>()
                .values()
                .iter()
                .map(|&v| f64::from(v))
                .sum();
            events.insert(
                (event_ids.value(row), tel_ids.value(row)),
                (sum, energies.value(row)),
            );
        }
    }
    events
}

#[test]
fn same_seed_same_events_whatever_the_batch_size() {
    let small = events(16);
    let large = events(500);
    assert_eq!(small, large);
    let array_events: std::collections::BTreeSet<i64> = small.keys().map(|(e, _)| *e).collect();
    assert_eq!(array_events.len(), 40);
}

#[test]
fn brighter_images_come_from_more_energetic_showers() {
    let events = events(64);
    let (mut low, mut high) = (Vec::new(), Vec::new());
    for &(sum, energy) in events.values() {
        assert!((0.05..=50.0).contains(&energy));
        if energy < 0.3 {
            low.push(sum)
        } else if energy > 3.0 {
            high.push(sum)
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    assert!(!low.is_empty() && !high.is_empty());
    assert!(
        mean(&high) > 1.5 * mean(&low),
        "high {} low {}",
        mean(&high),
        mean(&low)
    );
}

/// Every batch of a toy source, flattened: (schema, waveform values as f64 per row).
fn waveforms_of(config: ToyConfig) -> (arrow::datatypes::SchemaRef, Vec<Vec<f64>>) {
    let source = ToySource::new(config);
    let mut batches: Vec<RecordBatch> = Vec::new();
    source
        .generate(64, |b| {
            batches.push(b);
            true
        })
        .unwrap();
    let schema = batches[0].schema();
    let mut rows = Vec::new();
    for batch in &batches {
        let waveforms = batch.column_by_name("waveform").unwrap().as_list::<i32>();
        for row in 0..batch.num_rows() {
            let values = waveforms.value(row);
            rows.push(match values.as_primitive_opt::<Float32Type>() {
                Some(floats) => floats.values().iter().map(|&v| f64::from(v)).collect(),
                None => {
                    let scale = batch.column_by_name("waveform_scale").unwrap();
                    let offset = batch.column_by_name("waveform_offset").unwrap();
                    let scale = scale.as_primitive::<Float32Type>().value(row);
                    let offset = offset.as_primitive::<Float32Type>().value(row);
                    let stored = values.as_primitive::<arrow::datatypes::UInt16Type>();
                    let convert = |v: u16| f64::from(f32::from(v) / scale - offset);
                    stored.values().iter().map(|&v| convert(v)).collect()
                }
            });
        }
    }
    (schema, rows)
}

#[test]
fn uint16_samples_stand_for_the_float32_ones_within_half_a_step() {
    let config = ToyConfig {
        n_events: 10,
        seed: 3,
        ..ToyConfig::default()
    };
    let (float_schema, floats) = waveforms_of(config.clone());
    let (quantized_schema, quantized) = waveforms_of(ToyConfig {
        r1_encoding: R1Encoding::Uint16,
        waveform_scale: 80.0,
        waveform_offset: 5.0,
        ..config
    });
    assert_eq!(float_schema, cascade_schema::Level::R1.schema());
    assert_eq!(
        quantized_schema,
        cascade_schema::Level::R1Quantized.schema()
    );
    assert_eq!(floats.len(), quantized.len());
    for (float_row, quantized_row) in floats.iter().zip(&quantized) {
        assert_eq!(float_row.len(), quantized_row.len());
        for (&value, &stored) in float_row.iter().zip(quantized_row) {
            // Half a step of 1/80 p.e. plus the f32 roundings; beyond the stored range
            // (-5 to 814.19 p.e.) the value is clamped.
            let clamped = value.clamp(-5.0, 65535.0 / 80.0 - 5.0);
            assert!(
                (stored - clamped).abs() <= 0.5 / 80.0 + 1e-4,
                "{value} stored as {stored}"
            );
        }
    }
}
