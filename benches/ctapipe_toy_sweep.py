"""ctapipe 0.28 against cascade on toy events: conformance beyond the shared references.

The shared references (../shared/data/reference) and tests/golden hold ctapipe's results
on a few dozen real telescope and array events. This script runs cascade's toy source
(every toy camera: hexagonal at 1 GHz and 250 MHz, square modules with gaps) through
cascade and the same R1 waveforms through ctapipe, and compares:

1. every extractor configuration of tests/golden/make_extractors_golden.py: DL1 image and
   peak time;
2. every image cleaner (`image_cleaner_type`), after the default extractor: DL1 image and
   peak time, masks exactly, and every ImageProcessor parameter; the timing parameters where ctapipe's randomised fit gives the same result
   with 8 seeds (as ../shared/tools/ctapipe_reference.py decides it) and the image has
   more than 3 pixels (see crates/cascade-image/src/params/timing.rs);
3. stereo reconstruction (ShowerProcessor, HillasReconstructor): validity, telescopes,
   direction, core, h_max and per-telescope impact distances.

With `--shared` it also runs every extractor configuration and cleaner on every event of
the shared sim_telarray files (../shared/data/simtel, but the 40,000-pixel one, on which
ctapipe needs ~14 GB) through `pipelines/ctapipe_dl1.toml` and ctapipe's default chain
(`SimTelEventSource`, `EventTypeFilter`, `SoftwareTrigger`), comparing DL1 images, peak
times and masks: real waveforms, whose discrete levels make ties frequent.

Tolerances are the conformance tests': 1e-3 absolute or 1e-4 relative for images and
peak times; 1e-6 absolute (deg, m) or 1e-4 relative for parameters. Prints every kind of
disagreement with its first cases and exits with 1 if there is any. Not run in CI (it
needs ctapipe); the toy events change with the toy source, so this is a sweep, not a
golden. Usage (a Python with ctapipe==0.28.0 and pyarrow):

    cargo build --release
    python benches/ctapipe_toy_sweep.py [--cascade target/release/cascade] [--events 150] \
        [--uint16] [--shared]
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import astropy.units as u
import numpy as np
from traitlets.config import Config

from ctapipe_toy_throughput import events_of, read, subarray_of

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests" / "golden"))
from make_extractors_golden import CONFIGS, cascade_option  # noqa: E402

CLEANERS = [
    "TailcutsImageCleaner",
    "MARSImageCleaner",
    "FACTImageCleaner",
    "TimeConstrainedImageCleaner",
]
# FIT_RNG seeds of the timing fit's stability test (as ctapipe_reference.py).
TIMING_SEEDS = range(1, 9)

PIPELINE = """
[pipeline]
name = "ctapipe_toy_sweep"
batch_size = 128

[sources.events]
kind = "toy"
n_events = {n_events}
seed = 7
primary = "gamma"

[stages.calibrate]
kind = "calibrate"
inputs = ["events"]

[stages.clean]
kind = "clean"
inputs = ["calibrate"]

[stages.parameters]
kind = "image_parameters"
inputs = ["clean"]

[stages.stereo]
kind = "stereo"
inputs = ["parameters"]
""" + "".join(
    f'\n[sinks.{name}]\nkind = "{kind}"\ninputs = ["{source}"]\noutput_dir = "out"\n'
    for name, kind, source in [
        ("r1", "parquet", "events"),
        ("dl1_images", "parquet", "clean"),
        ("dl1_parameters", "parquet", "parameters"),
        ("dl2_shower", "parquet", "stereo"),
        ("instrument", "instrument", "parameters"),
    ]
)


class Disagreements:
    """Every kind of disagreement, with its count and first cases."""

    def __init__(self):
        self.cases = {}

    def add(self, kind, case):
        self.cases.setdefault(kind, []).append(case)

    def report(self, what, n):
        print(f"{what}: {n} compared, {sum(map(len, self.cases.values()))} disagreements")
        for kind, cases in sorted(self.cases.items()):
            print(f"    {kind}: {len(cases)}, e.g. {cases[:2]}")
        return not self.cases


def close(ours, theirs, atol, rtol=1e-4):
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    return ours.shape == theirs.shape and np.allclose(ours, theirs, rtol=rtol, atol=atol, equal_nan=True)


def run_cascade(cascade, pipeline, output, sets):
    command = [cascade, "run", str(pipeline), "--output", str(output), "--quiet"]
    for edit in sets:
        command += ["--set", edit]
    subprocess.run(command, check=True)


def by_key(rows):
    return {(row["event_id"], row["tel_id"]): row for row in rows}


def scalar(value):
    """A parameter as cascade writes it: angles in deg, other quantities in their unit."""
    if hasattr(value, "unit"):
        if value.unit.physical_type == "angle":
            return value.to_value(u.deg)
        return value.value
    return value


def timing_is_seed_stable(dl1, geometry):
    """Whether ctapipe's timing fit of `dl1` gives its result with every seed of
    TIMING_SEEDS (its random starts do not matter)."""
    from ctapipe import fitting
    from ctapipe.image import timing_parameters

    mask = dl1.image_mask
    rng = fitting.FIT_RNG
    saved = rng.bit_generator.state
    values = []
    try:
        for seed in TIMING_SEEDS:
            rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
            fit = timing_parameters(
                geom=geometry[mask],
                image=dl1.image[mask],
                peak_time=dl1.peak_time[mask],
                hillas_parameters=dl1.parameters.hillas,
            )
            values.append((fit.slope.to_value(1 / u.deg), float(fit.intercept), float(fit.deviation)))
    finally:
        rng.bit_generator.state = saved
    timing = dl1.parameters.timing
    nominal = np.array([timing.slope.to_value(1 / u.deg), float(timing.intercept), float(timing.deviation)])
    return bool(np.all(np.abs(np.array(values) - nominal) <= 1e-9 * (1 + np.abs(nominal))))


def compare_extractor(output, config):
    from ctapipe.calib import CameraCalibrator

    extractor, options = CONFIGS[config]
    subarray = subarray_of(output)
    calibrator = CameraCalibrator(
        subarray=subarray,
        config=Config({"CameraCalibrator": {"image_extractor_type": extractor}, extractor: options}),
    )
    ours = by_key(read(output / "dl1_images"))
    found, n = Disagreements(), 0
    for event in events_of(output, subarray):
        calibrator(event)
        for tel_id, dl1 in event.dl1.tel.items():
            row, n = ours[(event.index.event_id, tel_id)], n + 1
            for column in ("image", "peak_time"):
                if not close(row[column], getattr(dl1, column), atol=1e-3):
                    found.add(column, (event.index.event_id, tel_id))
    return found.report(f"extractor {config}", n)


def compare_cleaner(output, cleaner):
    from ctapipe.calib import CameraCalibrator
    from ctapipe.coordinates import TelescopeFrame
    from ctapipe.image import ImageProcessor

    subarray = subarray_of(output)
    calibrator = CameraCalibrator(subarray=subarray)
    processor = ImageProcessor(
        subarray=subarray, config=Config({"ImageProcessor": {"image_cleaner_type": cleaner}})
    )
    frames = {
        tel_id: tel.camera.geometry.transform_to(TelescopeFrame())
        for tel_id, tel in subarray.tel.items()
    }
    images, parameters = by_key(read(output / "dl1_images")), by_key(read(output / "dl1_parameters"))
    found, n, n_timing = Disagreements(), 0, 0
    for event in events_of(output, subarray):
        calibrator(event)
        processor(event)
        for tel_id, dl1 in event.dl1.tel.items():
            key, n = (event.index.event_id, tel_id), n + 1
            for column in ("image", "peak_time"):
                if not close(images[key][column], getattr(dl1, column), atol=1e-3):
                    found.add(column, key)
            if not np.array_equal(images[key]["image_mask"], dl1.image_mask):
                found.add("image_mask", key)
            ours = parameters[key]
            theirs = dl1.parameters.as_dict(recursive=True, flatten=True, add_prefix=True)
            timing_comparable = None
            for column, value in theirs.items():
                if column not in ours:
                    continue
                if column.startswith("timing_"):
                    if timing_comparable is None:
                        timing_comparable = (
                            dl1.image_mask.sum() > 3
                            and np.isfinite(dl1.parameters.hillas.intensity)
                            and timing_is_seed_stable(dl1, frames[tel_id])
                        )
                        n_timing += int(timing_comparable)
                    if not timing_comparable:
                        continue
                value = scalar(value)
                if not isinstance(value, (int, float, np.number)):
                    continue
                mine = np.nan if ours[column] is None else ours[column]
                if not close(mine, value, atol=1e-6):
                    found.add(column, (*key, mine, float(value)))
    return found.report(f"cleaner {cleaner} (timing: {n_timing} seed-stable fits)", n)


def compare_stereo(output):
    from ctapipe.calib import CameraCalibrator
    from ctapipe.image import ImageProcessor
    from ctapipe.reco import ShowerProcessor

    subarray = subarray_of(output)
    steps = [CameraCalibrator(subarray=subarray), ImageProcessor(subarray=subarray), ShowerProcessor(subarray=subarray)]
    ours = {row["event_id"]: row for row in read(output / "dl2_shower")}
    found, n = Disagreements(), 0
    for event in events_of(output, subarray):
        for step in steps:
            step(event)
        theirs = event.dl2.stereo.geometry["HillasReconstructor"]
        row, n = ours[event.index.event_id], n + 1
        if bool(theirs.is_valid) != row["is_valid"]:
            found.add("is_valid", event.index.event_id)
            continue
        if not row["is_valid"]:
            continue
        if sorted(row["telescopes"]) != sorted(int(t) for t in theirs.telescopes):
            found.add("telescopes", event.index.event_id)
        for column, atol in [("alt", 1e-6), ("az", 1e-6), ("core_x", 1e-3), ("core_y", 1e-3),
                             ("core_tilted_x", 1e-3), ("core_tilted_y", 1e-3), ("h_max", 1.0),
                             ("average_intensity", 1e-3), ("ang_distance_uncert", 1e-6)]:
            if not close(row[column], scalar(getattr(theirs, column)), atol=atol):
                found.add(column, (event.index.event_id, row[column], scalar(getattr(theirs, column))))
        for tel_id, distance in zip(row["joined_telescopes"], row["tel_impact_distance"]):
            impact = event.dl2.tel[tel_id].impact.get("HillasReconstructor")
            expected = np.nan if impact is None else impact.distance.to_value(u.m)
            if not close(distance, expected, atol=1e-3):
                found.add("tel_impact_distance", (event.index.event_id, tel_id))
    return found.report("stereo (HillasReconstructor)", n)


def compare_shared_file(cascade, path, output, config, ctapipe_config, sets):
    """One shared file through `pipelines/ctapipe_dl1.toml` with `sets` and through ctapipe's
    default chain with `ctapipe_config`: DL1 images, peak times and masks."""
    from ctapipe.calib import CameraCalibrator
    from ctapipe.image import ImageProcessor
    from ctapipe.instrument import SoftwareTrigger
    from ctapipe.io import SimTelEventSource
    from ctapipe.utils import EventTypeFilter

    command = [cascade, "run", str(PROJECT / "pipelines/ctapipe_dl1.toml"), "--input", str(path),
               "--output", str(output), "--quiet"]
    for edit in sets:
        command += ["--set", edit]
    subprocess.run(command, check=True)
    images = by_key(read(output / "dl1_images"))
    found, n = Disagreements(), 0
    with SimTelEventSource(path, focal_length_choice="EQUIVALENT") as source:
        subarray = source.subarray
        selections = [EventTypeFilter(), SoftwareTrigger(subarray=subarray)]
        calibrator = CameraCalibrator(subarray=subarray, config=ctapipe_config)
        processor = ImageProcessor(subarray=subarray, config=ctapipe_config)
        for event in source:
            if not all(selection(event) for selection in selections):
                continue
            calibrator(event)
            processor(event)
            for tel_id, dl1 in event.dl1.tel.items():
                key, n = (event.index.event_id, tel_id), n + 1
                row = images.get(key)
                if row is None:
                    found.add("missing", key)
                    continue
                for column in ("image", "peak_time"):
                    if not close(row[column], getattr(dl1, column), atol=1e-3):
                        found.add(column, key)
                if not np.array_equal(row["image_mask"], dl1.image_mask):
                    found.add("image_mask", key)
    return found.report(f"{path.name} {config}", n)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cascade", default=str(PROJECT / "target/release/cascade"))
    parser.add_argument("--events", type=int, default=150, help="toy array events")
    parser.add_argument(
        "--uint16",
        action="store_true",
        help="R1 as CTAO's camera stream stores it (uint16 with a scale and an offset; "
        "ctapipe gets the float32 values as ctapipe_io_zfits converts them)",
    )
    parser.add_argument("--shared", action="store_true", help="also the shared sim_telarray files")
    args = parser.parse_args()
    encoding = ['sources.events.r1_encoding = "uint16"'] if args.uint16 else []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        pipeline = scratch / "sweep.toml"
        pipeline.write_text(PIPELINE.format(n_events=args.events))
        agree = True
        for config, (extractor, options) in CONFIGS.items():
            output = scratch / config
            extractor_option = cascade_option(extractor, options)
            run_cascade(args.cascade, pipeline, output,
                        [f"stages.calibrate.image_extractor = {extractor_option}", *encoding])
            agree &= compare_extractor(output, config)
        for cleaner in CLEANERS:
            output = scratch / cleaner
            run_cascade(args.cascade, pipeline, output,
                        [f'stages.clean.image_cleaner_type = "{cleaner}"', *encoding])
            agree &= compare_cleaner(output, cleaner)
            if cleaner == "TailcutsImageCleaner":
                agree &= compare_stereo(output)
        if args.shared:
            runs = [
                (config, Config({"CameraCalibrator": {"image_extractor_type": extractor}, extractor: options}),
                 [f"stages.calibrate.image_extractor = {cascade_option(extractor, options)}"])
                for config, (extractor, options) in CONFIGS.items()
            ] + [
                (cleaner, Config({"ImageProcessor": {"image_cleaner_type": cleaner}}),
                 [f'stages.clean.image_cleaner_type = "{cleaner}"'])
                for cleaner in CLEANERS
            ]
            shared = Path(os.environ.get("CASCADE_SHARED_DATA", PROJECT.parent / "shared" / "data"))
            for path in sorted((shared / "simtel").glob("*.simtel.*")):
                if "40k" in path.name:
                    continue
                for config, ctapipe_config, sets in runs:
                    output = scratch / path.name / config
                    agree &= compare_shared_file(args.cascade, path, output, config, ctapipe_config, sets)
    sys.exit(0 if agree else 1)


if __name__ == "__main__":
    main()
