//! Workspace integration tests live next to this file (see Cargo.toml `[[test]]`).
