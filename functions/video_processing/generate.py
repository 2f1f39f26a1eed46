"""Build-time generator for video_processing: two short colour videos from fixed seeds.

A.mp4 (320x240, 45 frames) and B.mp4 (480x360, 30 frames), 15 frames/s, MPEG-4 part 2
("mp4v"): moving coloured shapes over a gradient with some noise, drawn with OpenCV and
numpy. Run in the image at build time; writes /app/inputs/A.mp4 and /app/inputs/B.mp4.
"""
import os

import cv2
import numpy as np

OUT = "/app/inputs"
FPS = 15
VIDEOS = {"A": (320, 240, 45, 1), "B": (480, 360, 30, 2)}


def frames(width, height, count, seed):
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 160, width, dtype=np.float32)
    background = np.stack([np.tile(ramp, (height, 1)), np.tile(ramp[::-1], (height, 1)),
                           np.full((height, width), 60, np.float32)], axis=2)
    shapes = [(rng.integers(0, width), rng.integers(0, height), rng.integers(-8, 9), rng.integers(-8, 9),
               rng.integers(10, height // 4), tuple(int(c) for c in rng.integers(100, 256, 3))) for _ in range(6)]
    for index in range(count):
        frame = background.copy()
        for number, (x, y, dx, dy, radius, colour) in enumerate(shapes):
            centre = (int(x + dx * index) % width, int(y + dy * index) % height)
            if number % 2:
                cv2.circle(frame, centre, int(radius), colour, -1)
            else:
                cv2.rectangle(frame, (centre[0] - int(radius), centre[1] - int(radius)),
                              (centre[0] + int(radius), centre[1] + int(radius)), colour, -1)
        noise = rng.normal(0, 8, frame.shape).astype(np.float32)
        yield np.clip(frame + noise, 0, 255).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (width, height, count, seed) in VIDEOS.items():
        path = os.path.join(OUT, f"{name}.mp4")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), FPS, (width, height))
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write {path} (no mp4v encoder?)")
        for frame in frames(width, height, count, seed):
            writer.write(frame)
        writer.release()
        print(f"video_processing: wrote {path}, {count} frames {width}x{height}, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
