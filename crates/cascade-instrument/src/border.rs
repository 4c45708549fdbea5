//! Border pixels of a camera (ctapipe `CameraGeometry.get_border_pixel_mask`).
