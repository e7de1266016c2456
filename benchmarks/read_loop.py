"""Resident memory over many sequential video reads in one fresh process: `Video(path).get_frames(indices)` with
the evaluation sampler's indices, video after video (cycling through the list). Prints one JSON line: the RSS in
bytes after every read.

    .venv/bin/python benchmarks/read_loop.py --reads 500 --backend auto VIDEO...
"""

from __future__ import annotations

import argparse
import json

import psutil
from harness import DEMO_CONFIG

from behavior.config import load_config
from behavior.data.sampling import sample_indices
from behavior.data.video import Video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("videos", nargs="+")
    parser.add_argument("--reads", type=int, required=True)
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    sampler = load_config(DEMO_CONFIG).sampler
    process = psutil.Process()
    rss = []
    for i in range(args.reads):
        with Video(args.videos[i % len(args.videos)], backend=args.backend) as video:
            info = video.info
            video.get_frames(
                sample_indices(info.num_frames, sampler, False, None, info.timestamps).reshape(-1)
            )
        rss.append(process.memory_info().rss)
    print(json.dumps({"rss": rss}))


if __name__ == "__main__":
    main()
