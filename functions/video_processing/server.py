"""video_processing: decodes a short video, turns it grey and encodes it again with OpenCV (FunctionBench's video_processing).

Each invocation decodes the video from the image frame by frame (OpenCV over FFmpeg's
libavcodec), converts each frame to greyscale and encodes the result as XVID (MPEG-4 part 2)
in an AVI file under /tmp, which it reads back and deletes. Inputs (the request's name): "A"
(320x240, 45 frames) and "B" (480x360, 30 frames), generated at build time by generate.py; an
empty name means "A". Reply: "processed video <input>: <n> frames <w>x<h> -> greyscale XVID,
<bytes> bytes, mean luma <mean>".
"""
import os
import tempfile

import cv2

from vhive_function import choose, serve

cv2.setNumThreads(1)  # one vCPU
INPUTS = {"A": "/app/inputs/A.mp4", "B": "/app/inputs/B.mp4"}


def handle(name: str) -> str:
    selector, path = choose("video_processing", INPUTS, name, default="A")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise RuntimeError(f"OpenCV cannot open {path}")
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fd, out_path = tempfile.mkstemp(suffix=".avi")
    os.close(fd)
    try:
        writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*"XVID"), capture.get(cv2.CAP_PROP_FPS), (width, height), isColor=False)
        frames, luma = 0, 0.0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            luma += float(grey.mean())
            writer.write(grey)
            frames += 1
        writer.release()
        capture.release()
        size = os.path.getsize(out_path)
    finally:
        os.remove(out_path)
    return f"processed video {selector}: {frames} frames {width}x{height} -> greyscale XVID, {size} bytes, mean luma {luma / max(frames, 1):.1f}"


if __name__ == "__main__":
    serve("video_processing", handle)
