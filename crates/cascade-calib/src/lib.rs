//! cascade-calib
