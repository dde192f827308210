"""Drawing detections and the FPS/latency overlay on a frame (a copy; the frame is not changed).

Sign names are shown in Vietnamese with diacritics when Pillow and a TrueType font (DejaVu Sans,
from the system's fonts package) are available; otherwise the ASCII class slugs are drawn with
OpenCV, which cannot render diacritics.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ._deps import require
from .names import display_name
from .postprocess import Detections

__all__ = ["Annotator", "find_font"]

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)


def find_font(explicit: str | None = None) -> str | None:
    """A TrueType font able to draw Vietnamese, or ``None``."""
    for candidate in (explicit,) if explicit else FONT_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _color(class_id: int) -> tuple[int, int, int]:
    hue = (class_id * 47) % 180
    rng = np.random.default_rng(class_id)
    return int(60 + hue), int(rng.integers(80, 255)), int(255 - hue)


class Annotator:
    def __init__(self, vietnamese: bool = True, font: str | None = None, font_size: int = 16) -> None:
        self.cv2 = require("cv2", "opencv", "or the system OpenCV on a Jetson")
        font_path = find_font(font) if vietnamese else None
        self.font_path = font_path
        self._font = None
        if font_path and importlib.util.find_spec("PIL") is not None:
            from PIL import ImageFont

            self._font = ImageFont.truetype(font_path, font_size)
        self.vietnamese = self._font is not None

    def name(self, slug: str) -> str:
        return display_name(slug) if self.vietnamese else slug

    def label(self, slug: str, score: float) -> str:
        return f"{self.name(slug)} {score:.2f}"

    def draw(
        self,
        frame: np.ndarray,
        detections: Detections,
        overlay: str = "",
        *,
        track_ids: np.ndarray | None = None,
        confirmed: np.ndarray | None = None,
        status: tuple[str, ...] = (),
    ) -> np.ndarray:
        """``track_ids`` (per detection, -1 for none) prefix the labels with ``#id``; a detection of
        a ``confirmed`` track gets a thicker box; ``status`` lines go under the overlay line."""
        cv2 = self.cv2
        image = frame.copy()
        texts = []
        for i, (box, score, class_id, slug) in enumerate(
            zip(detections.boxes, detections.scores, detections.class_ids, detections.labels, strict=True)
        ):
            x1, y1, x2, y2 = box.round().astype(int).tolist()
            color = _color(int(class_id))
            thick = confirmed is not None and bool(confirmed[i])
            cv2.rectangle(image, (x1, y1), (x2, y2), color, 3 if thick else 1 if confirmed is not None else 2)
            prefix = f"#{int(track_ids[i])} " if track_ids is not None and track_ids[i] >= 0 else ""
            texts.append(((x1, max(0, y1 - 18)), prefix + self.label(slug, float(score)), color))
        for row, line in enumerate((overlay, *status) if overlay else status):
            texts.append(((8, 6 + 20 * row), line, (255, 255, 255)))
        if self._font is None:
            for (x, y), text, color in texts:
                width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0]
                left = max(0, min(x, image.shape[1] - width - 2))  # keep the label inside the frame
                cv2.putText(image, text, (left, y + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
            return image
        from PIL import Image, ImageDraw

        canvas = Image.fromarray(image[:, :, ::-1])
        pen = ImageDraw.Draw(canvas)
        for (x, y), text, color in texts:
            start = max(0, min(x, canvas.width - int(pen.textlength(text, font=self._font)) - 2))  # stay in frame
            left, top, right, bottom = pen.textbbox((start, y), text, font=self._font)
            pen.rectangle((left - 2, top - 1, right + 2, bottom + 1), fill=(0, 0, 0))
            pen.text((start, y), text, font=self._font, fill=color[::-1])
        return np.asarray(canvas)[:, :, ::-1].copy()
