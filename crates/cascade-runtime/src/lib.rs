//! cascade-runtime
