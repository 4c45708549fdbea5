#!/usr/bin/env python
"""
Golden reference for cascade's low-gain / gain-selection path: ctapipe 0.28.0's DL1 image,
peak time and selected gain channel with a lowered gain-selection threshold.

With ctapipe's default ``ThresholdGainSelector`` (threshold 4000 ADC counts on the raw
high-gain samples) no pixel of the shared sim_telarray files uses the low gain, so the
shared references only check the high-gain path.  Here the threshold is lowered to
``THRESHOLD`` ADC counts (raw high-gain samples, pedestal included: the LST cameras sit at
about 400 ADC counts, NectarCam at about 250), so that about a third of the LSTCam pixels and
the brightest NectarCam pixels select the LOW gain, and many pixels have a high-gain maximum
exactly at the threshold (the comparison is strict: ``>``).

In ctapipe 0.28 the gain selector belongs to ``SimTelEventSource`` (``gain_selector_type``,
default ``ThresholdGainSelector``), which applies it in ``apply_simtel_r1_calibration``
before the ``CameraCalibrator``; it is configured here through the source's config.
Everything else is ``ctapipe-process``'s default chain, as ``../shared/tools/ctapipe_reference.py``:
``SimTelEventSource(path, focal_length_choice="EQUIVALENT")``, ``EventTypeFilter``,
``SoftwareTrigger``, ``CameraCalibrator`` (``NeighborPeakWindowSum`` with integration
correction, peak-time shift, ``NeighborAverage`` for broken pixels).

Output ``tests/golden/low_gain.parquet`` (zstd), one row per telescope event of ``EVENTS``:
``file`` (input stem), ``obs_id``, ``event_id``, ``tel_id``, ``camera_name``, ``n_pixels``,
``selected_gain_channel`` (list<int8>, 0 high / 1 low), ``image`` (list<float32>, p.e.),
``peak_time`` (list<float32>, ns), exactly as ctapipe computes them (float32).  The Parquet
(Arrow schema) metadata holds ``gain_selector_threshold`` (ADC counts), the versions and
this command.

Reproduce (from the project root; ctapipe in a scratch venv outside the project)::

    python3.11 -m venv /tmp/ctapipe-venv
    /tmp/ctapipe-venv/bin/pip install ctapipe==0.28.0 zstandard pyarrow
    /tmp/ctapipe-venv/bin/python tests/golden/make_low_gain_golden.py

The inputs are read from ``../shared/data/simtel`` (or ``$CASCADE_SHARED_DATA/simtel``);
``--out`` changes the output file.  The result is deterministic (no random numbers).
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

#: ThresholdGainSelector.threshold (raw high-gain ADC counts, pedestal included)
THRESHOLD = 450.0

#: input stem -> event ids to keep (None: every event).  Both files have two gains:
#: LSTCam (40 samples) and NectarCam (60 samples).
EVENTS = {
    "gamma_prod6_lst_nectarcam": None,  # event 100: 3 LSTCam + 4 NectarCam
    "proton_north_alpha_run201": [4211],  # 3 LSTCam (LSTN) + 3 NectarCam (MSTN)
}

PROJECT = Path(__file__).resolve().parents[2]
COMMAND = "/tmp/ctapipe-venv/bin/python tests/golden/make_low_gain_golden.py"


def shared_data():
    env = os.environ.get("CASCADE_SHARED_DATA")
    return Path(env) if env else PROJECT.parent / "shared" / "data"


def rows_of(stem, event_ids):
    """yield one dict per telescope event of the selected events of one file"""
    path = shared_data() / "simtel" / f"{stem}.simtel.zst"
    config = Config({"ThresholdGainSelector": {"threshold": THRESHOLD}})
    with SimTelEventSource(path, focal_length_choice="EQUIVALENT", config=config) as source:
        assert source.gain_selector.__class__.__name__ == "ThresholdGainSelector"
        assert source.gain_selector.threshold == THRESHOLD
        subarray = source.subarray
        event_type_filter = EventTypeFilter()
        software_trigger = SoftwareTrigger(subarray=subarray)
        calibrator = CameraCalibrator(subarray=subarray)
        for event in source:
            if event_ids is not None and int(event.index.event_id) not in event_ids:
                continue
            if not event_type_filter(event) or not software_trigger(event):
                continue
            calibrator(event)
            for tel_id, dl1 in event.dl1.tel.items():
                r1 = event.r1.tel[tel_id]
                camera = subarray.tel[tel_id].camera
                assert camera.readout.n_channels == 2, (stem, tel_id)
                # the selection is ThresholdGainSelector on the raw high gain
                r0 = event.r0.tel[tel_id].waveform
                expected = (r0[0] > THRESHOLD).any(axis=-1).astype(np.int8)
                assert np.array_equal(r1.selected_gain_channel, expected)
                assert dl1.image.dtype == np.float32 and dl1.peak_time.dtype == np.float32
                yield {
                    "file": stem,
                    "obs_id": int(event.index.obs_id),
                    "event_id": int(event.index.event_id),
                    "tel_id": int(tel_id),
                    "camera_name": camera.name,
                    "n_pixels": int(camera.geometry.n_pixels),
                    "selected_gain_channel": r1.selected_gain_channel.astype(np.int8),
                    "image": dl1.image,
                    "peak_time": dl1.peak_time,
                }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=PROJECT / "tests/golden/low_gain.parquet")
    args = parser.parse_args()

    rows = [row for stem, ids in EVENTS.items() for row in rows_of(stem, ids)]
    schema = pa.schema(
        [
            ("file", pa.string()),
            ("obs_id", pa.int32()),
            ("event_id", pa.int64()),
            ("tel_id", pa.int32()),
            ("camera_name", pa.string()),
            ("n_pixels", pa.int32()),
            ("selected_gain_channel", pa.list_(pa.int8())),
            ("image", pa.list_(pa.float32())),
            ("peak_time", pa.list_(pa.float32())),
        ],
        metadata={
            "gain_selector_threshold": repr(THRESHOLD),
            "gain_selector_threshold_unit": "ADC counts (raw high-gain samples)",
            "ctapipe_version": ctapipe.__version__,
            "eventio_version": eventio.__version__,
            "numpy_version": np.__version__,
            "source_kwargs": 'focal_length_choice="EQUIVALENT"',
            "command": COMMAND,
        },
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, args.out, compression="zstd", compression_level=19)

    for row in rows:
        low = int(row["selected_gain_channel"].sum())
        print(
            f"{row['file']:28s} event {row['event_id']:5d} tel {row['tel_id']:3d} "
            f"{row['camera_name']:10s} low gain {low:4d} / {row['n_pixels']} pixels"
        )
    n_low = sum(int(r["selected_gain_channel"].sum()) for r in rows)
    print(f"{len(rows)} telescope events, {n_low} low-gain pixels -> {args.out} "
          f"({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
