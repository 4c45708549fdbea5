//! cascade-stages
