//! cascade-pipeline
