//! cascade-schema
