//! Pixel neighbours from pixel positions, the way ctapipe computes them.
