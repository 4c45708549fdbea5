//! cascade-image
