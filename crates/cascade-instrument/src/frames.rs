//! Coordinate frames: camera, telescope, nominal, ground and tilted ground (ctapipe.coordinates).
