"""A synthetic camera: renders scenes and POSTs them to the platform's ingestion API like any
client would (`POST /v1/streams/{stream}/frames`). Standard library HTTP on purpose: the camera
is a client of the public API and needs nothing else."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .scenes import SCENARIOS, render_frame


def add_parser(sub) -> None:
    c = sub.add_parser("camera", help="post generated frames to the ingestion API")
    c.add_argument("--api", default="http://127.0.0.1:8080")
    c.add_argument("--stream", required=True)
    c.add_argument(
        "--token", default=os.environ.get("DATAENGINE_TOKEN"), help="bearer token (default: $DATAENGINE_TOKEN)"
    )
    c.add_argument("--cameras", type=int, default=2)
    c.add_argument("--fps", type=float, default=2.0, help="frames per second per camera")
    c.add_argument("--scenario", default="clear", choices=SCENARIOS)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--start-index", type=int, default=0, help="frame index to start from (to resume)")
    c.add_argument("--switch-to", default=None, choices=SCENARIOS, help="scenario after --switch-after-frames")
    c.add_argument("--switch-after-frames", type=int, default=0)
    c.add_argument("--truth-dir", default=None, help="write each frame's ground truth to DIR/<sha256>.json")
    c.add_argument("--max-frames", type=int, default=None)
    c.set_defaults(fn=run)


def post_frame(api: str, stream: str, token: str, camera: str, png: bytes, captured_at: str) -> int:
    query = urllib.parse.urlencode({"cameraId": camera, "capturedAt": captured_at})
    req = urllib.request.Request(
        f"{api.rstrip('/')}/v1/streams/{urllib.parse.quote(stream)}/frames?{query}",
        data=png,
        method="POST",
        headers={"Content-Type": "image/png", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status


def run(a) -> None:
    if not a.token:
        raise SystemExit("camera: --token (or DATAENGINE_TOKEN) is required")
    stop = {"now": False}
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.__setitem__("now", True))
    truth = Path(a.truth_dir) if a.truth_dir else None
    if truth:
        truth.mkdir(parents=True, exist_ok=True)
    index, posted = a.start_index, 0
    period = 1.0 / a.fps
    while not stop["now"] and (a.max_frames is None or posted < a.max_frames):
        tick = time.monotonic()
        scenario = a.switch_to if a.switch_to and index - a.start_index >= a.switch_after_frames else a.scenario
        for cam in range(a.cameras):
            camera_id = f"cam-{cam}"
            frame = render_frame(a.seed, scenario, camera_id, index)
            buf = io.BytesIO()
            frame.image.save(buf, format="PNG", compress_level=1)
            png = buf.getvalue()
            if truth:
                (truth / f"{hashlib.sha256(png).hexdigest()}.json").write_text(
                    json.dumps(
                        {
                            "scenario": scenario,
                            "camera_id": camera_id,
                            "frame_index": index,
                            "boxes": [
                                {"className": b.category, "x1": b.x1, "y1": b.y1, "x2": b.x2, "y2": b.y2}
                                for b in frame.boxes
                            ],
                        }
                    )
                )
            captured = dt.datetime.now(dt.UTC).isoformat()
            delay = 1.0
            while not stop["now"]:
                try:
                    post_frame(a.api, a.stream, a.token, camera_id, png, captured)
                    break
                except urllib.error.HTTPError as err:
                    body = err.read().decode(errors="replace")[:300]
                    if 400 <= err.code < 500:
                        raise SystemExit(
                            f"camera: the API refused frame {index} of {camera_id}: {err.code} {body}"
                        ) from err
                    print(f"camera: {err.code} from the API, retrying in {delay:.0f}s", file=sys.stderr)
                except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
                    print(f"camera: API not reachable ({err}), retrying in {delay:.0f}s", file=sys.stderr)
                time.sleep(delay)
                delay = min(delay * 2, 30)
            posted += 1
        index += 1
        time.sleep(max(0.0, period - (time.monotonic() - tick)))
