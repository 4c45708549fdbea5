#!/usr/bin/env python
"""
Golden reference for cascade's `clean` stage: the masks of ctapipe 0.28.0's image cleaner
classes, with their class defaults, on the DL1 images of shared sim_telarray files.

``ctapipe-process`` cleans with ``ImageProcessor.image_cleaner_type`` (default
``TailcutsImageCleaner``); the shared references hold masks of the cleaning *functions*
with a few parameter sets, but not of the other cleaner classes, whose defaults are the
tail-cuts cleaner's (picture 10 p.e., boundary 5 p.e., 2 picture neighbours, isolated
pixels dropped) rather than their functions' defaults, and which need the peak times.
Here every cleaner of ``CLEANERS`` is built as ``ImageProcessor`` builds it
(``cleaner_class(subarray=subarray)``, class defaults) and called as ``ImageProcessor``
calls it (``cleaner(tel_id, image, arrival_times=peak_time)``) on ctapipe's own DL1 image
and peak time of every telescope event of ``STEMS``, taken from
``../shared/data/reference/<stem>.cleaning.parquet`` (ctapipe 0.28's defaults, float32).
The subarray (pixel neighbours) comes from ``SimTelEventSource(path,
focal_length_choice="EQUIVALENT")``.

``NSBImageCleaner`` is left out: it needs pedestal monitoring data the simulation files do
not carry.

Output ``tests/golden/cleaners.parquet`` (zstd), one row per telescope event: ``file``
(input stem), ``obs_id``, ``event_id``, ``tel_id``, ``camera_name``, and one
``mask_<class name>`` (list<bool>) per cleaner. The Parquet metadata holds the versions,
the cleaners' settings per camera (all the class defaults) and this command.

Reproduce (from the project root; ctapipe in a scratch venv outside the project)::

    python3.11 -m venv /tmp/ctapipe-venv
    /tmp/ctapipe-venv/bin/pip install ctapipe==0.28.0 zstandard pyarrow
    /tmp/ctapipe-venv/bin/python tests/golden/make_cleaners_golden.py

The inputs are read from ``../shared/data`` (or ``$CASCADE_SHARED_DATA``); ``--out``
changes the output file. The result is deterministic.
"""

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import ctapipe
from ctapipe.image.cleaning import (
    FACTImageCleaner,
    MARSImageCleaner,
    TailcutsImageCleaner,
    TimeConstrainedImageCleaner,
)
from ctapipe.io import SimTelEventSource

#: Four camera types: LSTCam and NectarCam, LSTCam muon rings, HESS-I, FlashCam.
STEMS = [
    "gamma_prod6_lst_nectarcam",
    "lst_muons",
    "hess1u_gamma",
    "proton_lst_flashcam_run201",
]

CLEANERS = [
    TailcutsImageCleaner,
    MARSImageCleaner,
    FACTImageCleaner,
    TimeConstrainedImageCleaner,
]


def cleaner_settings(cleaner, tel_id):
    """The configurable traits of a cleaner and their values for telescope ``tel_id``."""
    return {
        name: getattr(cleaner, name).tel[tel_id]
        for name in sorted(cleaner.class_traits(config=True))
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared",
        default=os.environ.get("CASCADE_SHARED_DATA", "../shared/data"),
        help="the shared data directory (simtel/ and reference/)",
    )
    parser.add_argument(
        "--out",
        default=str(Path(__file__).with_name("cleaners.parquet")),
        help="output Parquet file",
    )
    args = parser.parse_args()
    shared = Path(args.shared)

    columns = {name: [] for name in ["file", "obs_id", "event_id", "tel_id", "camera_name"]}
    masks = {f"mask_{cls.__name__}": [] for cls in CLEANERS}
    settings = {}
    for stem in STEMS:
        path = shared / "simtel" / f"{stem}.simtel.zst"
        with SimTelEventSource(path, focal_length_choice="EQUIVALENT", max_events=1) as source:
            subarray = source.subarray
        cleaners = [cls(subarray=subarray) for cls in CLEANERS]
        for cleaner in cleaners:
            for tel_id in subarray.tel_ids:
                name = f"{type(cleaner).__name__} {subarray.tel[tel_id].camera.name}"
                settings[name] = cleaner_settings(cleaner, tel_id)
        reference = pq.read_table(shared / "reference" / f"{stem}.cleaning.parquet")
        for row in reference.to_pylist():
            image = np.asarray(row["image"], dtype=np.float32)
            peak_time = np.asarray(row["peak_time"], dtype=np.float32)
            columns["file"].append(stem)
            for key in ["obs_id", "event_id", "tel_id", "camera_name"]:
                columns[key].append(row[key])
            for cls, cleaner in zip(CLEANERS, cleaners):
                mask = cleaner(row["tel_id"], image, arrival_times=peak_time)
                masks[f"mask_{cls.__name__}"].append(np.asarray(mask, dtype=bool).tolist())

    table = pa.table(
        {
            "file": pa.array(columns["file"], pa.string()),
            "obs_id": pa.array(columns["obs_id"], pa.int32()),
            "event_id": pa.array(columns["event_id"], pa.int64()),
            "tel_id": pa.array(columns["tel_id"], pa.int16()),
            "camera_name": pa.array(columns["camera_name"], pa.string()),
            **{name: pa.array(values, pa.list_(pa.bool_())) for name, values in masks.items()},
        }
    )
    metadata = {
        "ctapipe_version": ctapipe.__version__,
        "numpy_version": np.__version__,
        "cleaner_settings": json.dumps(settings, default=str),
        "command": "python tests/golden/make_cleaners_golden.py",
    }
    table = table.replace_schema_metadata(metadata)
    pq.write_table(table, args.out, compression="zstd")
    print(f"{args.out}: {table.num_rows} telescope events")
    for name, values in masks.items():
        print(f"  {name}: {sum(sum(m) for m in values)} pixels kept")


if __name__ == "__main__":
    main()
