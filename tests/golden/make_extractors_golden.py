#!/usr/bin/env python
"""
Golden reference for cascade's charge extractors other than ctapipe's default: ctapipe
0.28.0's DL1 image and peak time with every ``ImageExtractor`` of ``CameraCalibrator``.

The shared references (``../shared/data/reference``) hold the DL1 of ctapipe's default
chain only, ``NeighborPeakWindowSum`` with ``local_weight = 0``. Here ``CameraCalibrator``
runs with each extractor of ``CONFIGS`` (its class and options as a ctapipe ``Config``)
on the telescope events of ``FILES``; everything else is ``ctapipe-process``'s default
chain, as ``../shared/tools/ctapipe_reference.py``: ``SimTelEventSource(path,
focal_length_choice="EQUIVALENT")``, ``EventTypeFilter``, ``SoftwareTrigger``,
integration correction where the options ask for it, peak-time shift, ``NeighborAverage``
for broken pixels.

Output ``tests/golden/extractors.parquet`` (zstd), one row per (configuration, telescope
event): ``config`` (a key of ``CONFIGS``), ``file`` (input stem), ``obs_id``, ``event_id``,
``tel_id``, ``camera_name``, ``image`` (list<float32>, p.e.), ``peak_time``
(list<float32>, ns), exactly as ctapipe computes them. The Parquet (Arrow schema) metadata
holds every configuration as cascade's ``image_extractor`` option (``cascade_<config>``),
the versions and this command.

Reproduce (from the project root; ctapipe in a scratch venv outside the project)::

    python3.11 -m venv /tmp/ctapipe-venv
    /tmp/ctapipe-venv/bin/pip install ctapipe==0.28.0 zstandard pyarrow
    /tmp/ctapipe-venv/bin/python tests/golden/make_extractors_golden.py

The inputs are read from ``../shared/data/simtel`` (or ``$CASCADE_SHARED_DATA/simtel``);
``--out`` changes the output file. The result is deterministic (no random numbers).
"""

import argparse
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from traitlets.config import Config

import ctapipe
import eventio
from ctapipe.calib import CameraCalibrator
from ctapipe.instrument import SoftwareTrigger
from ctapipe.io import SimTelEventSource
from ctapipe.utils import EventTypeFilter

#: name -> (ctapipe extractor class, its options). Non-default options where the class
#: has any, so that they are exercised.
CONFIGS = {
    "LocalPeakWindowSum": ("LocalPeakWindowSum", {"window_width": 7, "window_shift": 3}),
    "GlobalPeakWindowSum": ("GlobalPeakWindowSum", {"window_width": 7, "window_shift": 3}),
    "GlobalPeakWindowSum_brightest": (
        "GlobalPeakWindowSum",
        {"window_width": 6, "window_shift": 2, "pixel_fraction": 0.05},
    ),
    "FixedWindowSum": (
        "FixedWindowSum",
        {"peak_index": 12, "window_width": 7, "window_shift": 3},
    ),
    "FullWaveformSum": ("FullWaveformSum", {}),
    "SlidingWindowMaxSum": ("SlidingWindowMaxSum", {"window_width": 5}),
    "NeighborPeakWindowSum_local_weight": (
        "NeighborPeakWindowSum",
        {
            "window_width": 5,
            "window_shift": 2,
            "local_weight": 1,
            "apply_integration_correction": False,
        },
    ),
}

#: input stem -> telescope ids to keep (None: every one): LSTCam and NectarCam (two
#: gains, 40 and 60 samples at 1 GHz), HESS-I and FlashCam (250 MHz).
FILES = {
    "gamma_prod6_lst_nectarcam": [1, 5],
    "hess1u_gamma": None,
    "proton_lst_flashcam_run201": [7],
}

PROJECT = Path(__file__).resolve().parents[2]
COMMAND = "/tmp/ctapipe-venv/bin/python tests/golden/make_extractors_golden.py"


def shared_data():
    env = os.environ.get("CASCADE_SHARED_DATA")
    return Path(env) if env else PROJECT.parent / "shared" / "data"


def cascade_option(extractor, options):
    """The configuration as cascade's `image_extractor` option (TOML inline table)."""
    fields = [f'extractor = "{extractor}"']
    for key, value in options.items():
        fields.append(f"{key} = {str(value).lower() if isinstance(value, bool) else value}")
    return "{ " + ", ".join(fields) + " }"


def rows_of(name, stem, tel_ids):
    """yield one dict per telescope event of one file (of `tel_ids`, None: all) with
    configuration `name`"""
    extractor, options = CONFIGS[name]
    path = shared_data() / "simtel" / f"{stem}.simtel.zst"
    config = Config({"CameraCalibrator": {"image_extractor_type": extractor}, extractor: options})
    with SimTelEventSource(path, focal_length_choice="EQUIVALENT") as source:
        subarray = source.subarray
        event_type_filter = EventTypeFilter()
        software_trigger = SoftwareTrigger(subarray=subarray)
        calibrator = CameraCalibrator(subarray=subarray, config=config)
        used = calibrator.image_extractors[extractor]
        for key, value in options.items():
            assert getattr(used, key).tel[None] == value, (name, key)
        for event in source:
            if not event_type_filter(event) or not software_trigger(event):
                continue
            calibrator(event)
            for tel_id, dl1 in event.dl1.tel.items():
                if tel_ids is not None and tel_id not in tel_ids:
                    continue
                camera = subarray.tel[tel_id].camera
                assert dl1.image.dtype == np.float32 and dl1.peak_time.dtype == np.float32
                yield {
                    "config": name,
                    "file": stem,
                    "obs_id": int(event.index.obs_id),
                    "event_id": int(event.index.event_id),
                    "tel_id": int(tel_id),
                    "camera_name": camera.name,
                    "image": dl1.image,
                    "peak_time": dl1.peak_time,
                }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=PROJECT / "tests/golden/extractors.parquet")
    args = parser.parse_args()

    rows = [
        row
        for name in CONFIGS
        for stem, tel_ids in FILES.items()
        for row in rows_of(name, stem, tel_ids)
    ]
    schema = pa.schema(
        [
            ("config", pa.string()),
            ("file", pa.string()),
            ("obs_id", pa.int32()),
            ("event_id", pa.int64()),
            ("tel_id", pa.int32()),
            ("camera_name", pa.string()),
            ("image", pa.list_(pa.float32())),
            ("peak_time", pa.list_(pa.float32())),
        ],
        metadata={
            **{f"cascade_{name}": cascade_option(*CONFIGS[name]) for name in CONFIGS},
            "ctapipe_version": ctapipe.__version__,
            "eventio_version": eventio.__version__,
            "numpy_version": np.__version__,
            "source_kwargs": 'focal_length_choice="EQUIVALENT"',
            "command": COMMAND,
        },
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, args.out, compression="zstd", compression_level=19)
    for name in CONFIGS:
        n = sum(1 for row in rows if row["config"] == name)
        print(f"{name:36s} {n} telescope events")
    print(f"{len(rows)} rows -> {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
