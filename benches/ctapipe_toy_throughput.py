"""ctapipe 0.28 on cascade's toy LST-like telescope events: the like-for-like figures for
`cascade bench`'s toy scenarios.

Without them, `cascade bench` compares its toy events with ctapipe measured on lst_muons
(the file of ctapipe's figures in ../shared/data/reference/ctapipe_throughput.json),
whose muon rings are larger images than the toy gamma rays. This script runs ctapipe's
CameraCalibrator and ImageProcessor (defaults, no true images, like
`b_ImageProcessor_no_true_image`) on the very events the bench replays, after checking
that ctapipe's DL1 images, masks and Hillas intensities are cascade's, and times them (and
the two numba-compiled functions of CameraCalibrator's default extractor alone) the
way ../shared/tools/ctapipe_throughput.py does (CPU time of this process, runs of at least
MIN_TIME s, median and best of RUNS). It writes the figures in the layout of
ctapipe_throughput.json, as the measurements of a "file" named TOY_EVENTS, which
`cascade bench --ctapipe` then uses for its toy scenarios. Its `subarray_of` and
`events_of` give ctapipe's view of any dump of toy events (every toy camera), for
`ctapipe_toy_sweep.py` too.

Not run in CI. Usage (a Python with ctapipe==0.28.0 and pyarrow; one core):

    cascade run pipelines/bench_toy_events.toml --output /tmp/toy_events
    taskset -c 1 python benches/ctapipe_toy_throughput.py /tmp/toy_events \
        benches/reference/ctapipe_toy_throughput_amd_epyc_zen5.json
"""

import copy
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import astropy.units as u
import numpy as np
import pyarrow.dataset as ds
from astropy.coordinates import EarthLocation

# The name `cascade bench` looks for (crates/cascade-cli/src/bench.rs, TOY_EVENTS).
TOY_EVENTS = "cascade_toy_lst_like"
MIN_TIME = 2.0
RUNS = 3
WARM_UP_PASSES = 2
# The relative tolerance of the cross-check of cascade's and ctapipe's DL1 (issue 4's).
RTOL = 1e-4


def read(path):
    return ds.dataset(str(path), format="parquet").to_table().to_pylist()


# The toy array's readouts and size types (crates/cascade-stages/src/toy/array.rs), which
# the instrument sink does not write: sampling rate (GHz) by camera, size by optics.
TOY_SAMPLING_RATE_GHZ = {"ToyLSTCam": 1.0, "ToyFlashCam": 0.25, "ToyCHEC": 1.0}
TOY_SIZE_TYPES = {"LST": "LST", "MST": "MST", "ASTRI": "SST"}
# The toy array's reference altitude (m); its longitude and latitude do not enter.
TOY_REFERENCE_ALTITUDE_M = 2200.0


def subarray_of(dump):
    """ctapipe's SubarrayDescription of the toy telescopes with events in the dump (its
    instrument, and each telescope's samples from its R1 rows)."""
    from ctapipe.coordinates import CameraFrame
    from ctapipe.instrument import (
        CameraDescription,
        CameraGeometry,
        CameraReadout,
        OpticsDescription,
        PixelShape,
        ReflectorShape,
        SizeType,
        SubarrayDescription,
        TelescopeDescription,
    )

    telescopes = read(dump / "instrument" / "subarray")
    pixels = read(dump / "instrument" / "camera_geometry")
    r1 = ds.dataset(str(dump / "r1"), format="parquet").to_table(columns=["tel_id", "n_samples"])
    n_samples = dict(zip(r1.column("tel_id").to_pylist(), r1.column("n_samples").to_pylist()))
    # cascade's toy reference pulse (crates/cascade-stages/src/toy/mod.rs): a Gaussian of
    # sigma 1.5 ns sampled every 0.1 ns
    pulse = np.exp(-0.5 * ((np.arange(200) * 0.1 - 10.0) / 1.5) ** 2)
    positions, descriptions = {}, {}
    for tel in telescopes:
        if tel["tel_id"] not in n_samples:
            continue
        camera_pixels = [p for p in pixels if p["camera_name"] == tel["camera_name"]]
        focal_length = tel["equivalent_focal_length"] * u.m
        geometry = CameraGeometry(
            name=tel["camera_name"],
            pix_id=np.array([p["pix_id"] for p in camera_pixels]),
            pix_x=np.array([p["pix_x"] for p in camera_pixels]) * u.m,
            pix_y=np.array([p["pix_y"] for p in camera_pixels]) * u.m,
            pix_area=np.array([p["pix_area"] for p in camera_pixels]) * u.m**2,
            pix_type=PixelShape(camera_pixels[0]["pix_type"]),
            pix_rotation=camera_pixels[0]["pix_rotation"] * u.deg,
            cam_rotation=camera_pixels[0]["cam_rotation"] * u.deg,
            frame=CameraFrame(focal_length=focal_length),
        )
        readout = CameraReadout(
            name=tel["camera_name"],
            sampling_rate=TOY_SAMPLING_RATE_GHZ[tel["camera_name"]] * u.GHz,
            reference_pulse_shape=pulse[np.newaxis],
            reference_pulse_sample_width=0.1 * u.ns,
            n_channels=1,
            n_pixels=len(camera_pixels),
            n_samples=n_samples[tel["tel_id"]],
        )
        optics = OpticsDescription(
            name=tel["optics_name"],
            size_type=SizeType[TOY_SIZE_TYPES[tel["optics_name"]]],
            n_mirrors=1,
            equivalent_focal_length=focal_length,
            effective_focal_length=focal_length,
            mirror_area=tel["mirror_area"] * u.m**2,
            n_mirror_tiles=198,
            reflector_shape=ReflectorShape.PARABOLIC,
        )
        camera = CameraDescription(tel["camera_name"], geometry, readout)
        descriptions[tel["tel_id"]] = TelescopeDescription(tel["optics_name"], optics, camera)
        positions[tel["tel_id"]] = [tel["pos_x"], tel["pos_y"], tel["pos_z"]] * u.m
    location = EarthLocation(lon=-17.89 * u.deg, lat=28.76 * u.deg, height=TOY_REFERENCE_ALTITUDE_M * u.m)
    return SubarrayDescription("cascade toy", positions, descriptions, location)


def events_of(dump, subarray):
    """ctapipe's ArrayEventContainers of the dump's R1 waveforms and pointings, in the
    bench's order."""
    from ctapipe.containers import (
        ArrayEventContainer,
        CameraCalibrationContainer,
        PixelStatus,
        R1CameraContainer,
    )

    events = {}
    for row in read(dump / "r1"):
        key = (row["obs_id"], row["event_id"])
        if key not in events:
            event = ArrayEventContainer()
            event.index.obs_id, event.index.event_id = key
            event.trigger.tels_with_trigger = np.array(row["tels_with_trigger"])
            event.monitoring.pointing.array_altitude = row["array_pointing_alt"] * u.deg
            event.monitoring.pointing.array_azimuth = row["array_pointing_az"] * u.deg
            events[key] = event
        n_pixels = subarray.tel[row["tel_id"]].camera.geometry.n_pixels
        if "waveform_scale" in row:
            # R1 as CTAO's camera stream stores it, converted as ctapipe_io_zfits does
            stored = np.array(row["waveform"], dtype=np.uint16)
            scale, offset = np.float32(row["waveform_scale"]), np.float32(row["waveform_offset"])
            waveform = stored.astype(np.float32) / scale - offset
        else:
            waveform = np.array(row["waveform"], dtype=np.float32)
        events[key].r1.tel[row["tel_id"]] = R1CameraContainer(
            waveform=waveform.reshape(1, n_pixels, row["n_samples"]),
            selected_gain_channel=np.zeros(n_pixels, dtype=np.int8),
            # high gain stored, as SimTelEventSource marks one-gain pixels
            pixel_status=np.full(n_pixels, PixelStatus.HIGH_GAIN_STORED, dtype=np.uint8),
        )
        # no broken pixels and no time shifts (the toy source has no calibration data)
        events[key].monitoring.tel[row["tel_id"]].camera.coefficients = (
            CameraCalibrationContainer(outlier_mask=np.zeros((1, n_pixels), dtype=bool))
        )
        pointing = events[key].monitoring.tel[row["tel_id"]].pointing
        pointing.altitude = row["pointing_alt"] * u.deg
        pointing.azimuth = row["pointing_az"] * u.deg
    return list(events.values())


def check_against_cascade(dump, events):
    """ctapipe's images and Hillas intensities are cascade's (else the timing compares
    different work)."""
    images = {(r["event_id"], r["tel_id"]): r for r in read(dump / "dl1_images")}
    parameters = {(r["event_id"], r["tel_id"]): r for r in read(dump / "dl1_parameters")}
    n_checked = 0
    for event in events:
        for tel_id, dl1 in event.dl1.tel.items():
            key = (event.index.event_id, tel_id)
            np.testing.assert_allclose(dl1.image, images[key]["image"], rtol=RTOL, atol=1e-3)
            assert (dl1.image_mask == np.array(images[key]["image_mask"])).all(), key
            np.testing.assert_allclose(
                dl1.parameters.hillas.intensity,
                parameters[key]["hillas_intensity"],
                rtol=RTOL,
                equal_nan=True,
            )
            n_checked += 1
    return n_checked


def timed_runs(func, n_items):
    """CPU seconds per item of `func` (which processes `n_items`), RUNS runs of >= MIN_TIME s."""
    per_item = []
    for _ in range(RUNS):
        gc.collect()
        cpu0, wall0, passes = time.process_time(), time.perf_counter(), 0
        while True:
            func()
            passes += 1
            if time.perf_counter() - wall0 >= MIN_TIME:
                break
        per_item.append((time.process_time() - cpu0) / (passes * n_items))
    return {
        "cpu_s_per_tel_event": per_item,
        "unit": "tel_event",
        "rate_cpu_median": 1.0 / statistics.median(per_item),
        "rate_cpu_best": 1.0 / min(per_item),
    }


def numba_kernels(events, subarray, calibrator):
    """The two numba-compiled functions that the calibrator's extractor
    (NeighborPeakWindowSum, the default) calls per telescope event, alone on the same
    waveforms with its options: how much of ctapipe's calibration is compiled code."""
    from ctapipe.image.extractor import extract_around_peak, neighbor_average_maximum

    extractor = calibrator.image_extractors["NeighborPeakWindowSum"]
    inputs = []
    for event in events:
        for tel_id, r1 in event.r1.tel.items():
            neighbors = subarray.tel[tel_id].camera.geometry.neighbor_matrix_sparse
            broken = np.zeros((1, r1.waveform.shape[1]), dtype=bool)
            options = (
                extractor.local_weight.tel[tel_id],
                extractor.window_width.tel[tel_id],
                extractor.window_shift.tel[tel_id],
                extractor.sampling_rate_ghz[tel_id],
            )
            inputs.append((r1.waveform, neighbors.indices, neighbors.indptr, broken, options))

    def run():
        for waveform, indices, indptr, broken, (weight, width, shift, rate) in inputs:
            peak = neighbor_average_maximum(waveform, indices, indptr, weight, broken)
            extract_around_peak(waveform, peak, width, shift, rate)

    return run


def main(dump, output):
    import ctapipe
    import numba
    from ctapipe.calib import CameraCalibrator
    from ctapipe.image import ImageProcessor

    dump = Path(dump)
    subarray = subarray_of(dump)
    events = events_of(dump, subarray)
    n_tel = sum(len(e.r1.tel) for e in events)
    calibrator = CameraCalibrator(subarray=subarray)
    image_processor = ImageProcessor(subarray=subarray)
    for _ in range(WARM_UP_PASSES):
        for event in events:
            calibrator(event)
            image_processor(event)
    n_checked = check_against_cascade(dump, events)
    events = [copy.deepcopy(e) for e in events]

    def calibrate():
        for event in events:
            calibrator(event)

    def parametrise():
        for event in events:
            image_processor(event)

    def chain():
        for event in events:
            calibrator(event)
            image_processor(event)

    stages = {
        "a_CameraCalibrator": timed_runs(calibrate, n_tel),
        "b_ImageProcessor_no_true_image": timed_runs(parametrise, n_tel),
        "ab_chain": timed_runs(chain, n_tel),
        "c_numba_kernels_of_CameraCalibrator": timed_runs(
            numba_kernels(events, subarray, calibrator), n_tel
        ),
    }
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    result = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": {
            "lscpu_model_name": next(
                (line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                 if line.startswith("Model name:")),
                "",
            ),
            "affinity": sorted(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "ctapipe": ctapipe.__version__,
            "numpy": np.__version__,
            "numba": numba.__version__,
        },
        "settings": {"min_time_s": MIN_TIME, "runs": RUNS, "warm_up_passes": WARM_UP_PASSES},
        "files": [
            {
                "name": TOY_EVENTS,
                "source": str(dump),
                "in_memory": {
                    "n_array_events": len(events),
                    "n_telescope_events": n_tel,
                    "telescope_events_checked_against_cascade": n_checked,
                    **stages,
                },
            }
        ],
    }
    Path(output).write_text(json.dumps(result, indent=2) + "\n")
    for stage, figures in stages.items():
        print(f"{stage:32s} {figures['rate_cpu_median']:8.0f} tel events/s (median)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
