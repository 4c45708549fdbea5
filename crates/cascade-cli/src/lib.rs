//! cascade-cli
