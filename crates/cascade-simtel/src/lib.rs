//! cascade-simtel
