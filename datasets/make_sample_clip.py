"""Make ``datasets/vn-signs-sample.mp4``: a short dashcam clip from the embedded sample's frames.

The sample's valid and test frames (recordings the shipped model was not trained on), in order,
each held for ``--hold`` video frames at ``--fps``: a clip that ``bienbao detect`` can run on a
machine with only the runtime installed. Same data, same licence (CC BY 4.0): see
``vn-signs-sample/ATTRIBUTION.md``.

    python datasets/make_sample_clip.py            # needs OpenCV (bienbao-runtime[opencv])
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    import cv2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=HERE / "vn-signs-sample")
    parser.add_argument("--out", type=Path, default=HERE / "vn-signs-sample.mp4")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--hold", type=int, default=5, help="video frames per sample frame")
    args = parser.parse_args()
    frames = sorted((args.sample / "valid/images").iterdir()) + sorted((args.sample / "test/images").iterdir())
    first = cv2.imread(str(frames[0]))
    height, width = first.shape[:2]
    partial = args.out.with_name(args.out.stem + ".partial.mp4")
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*"mp4v"), args.fps, (width, height))
    if not writer.isOpened():
        raise SystemExit(f"OpenCV cannot write {partial} (no mp4v encoder in this build)")
    for path in frames:
        image = cv2.imread(str(path))
        if image is None or image.shape[:2] != (height, width):
            raise SystemExit(f"{path}: unreadable or not {width}x{height}")
        for _ in range(args.hold):
            writer.write(image)
    writer.release()
    partial.replace(args.out)
    print(
        f"wrote {args.out}: {len(frames)} frames x {args.hold} at {args.fps} fps "
        f"({len(frames) * args.hold / args.fps:.0f} s, {args.out.stat().st_size / 1e6:.2f} MB)"
    )


if __name__ == "__main__":
    main()
