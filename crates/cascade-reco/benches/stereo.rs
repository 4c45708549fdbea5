//! Stereo reconstruction benchmark (placeholder until the kernels land).
fn main() {}
