"""cnn_serving: classifies pictures with a small convolutional network in PyTorch (FunctionBench's cnn_image_classification).

The network (ShapeNet, shapes.py; trained at build time by generate.py) is loaded at
start-up; each invocation decodes a batch of 8 PNG pictures from the image and classifies each
as circle, square, triangle or cross. Inputs (the request's name): "A" and "B", two batches
generated at build time; an empty name means "A". Reply: "classified image batch <input>
(8 images, 64x64): <class>,<class>,...".
"""
import os

import torch
from PIL import Image

from shapes import CLASSES, SIZE, ShapeNet, to_tensor
from vhive_function import choose, serve

torch.set_num_threads(1)  # one vCPU
MODEL = ShapeNet()
MODEL.load_state_dict(torch.load("/app/model.pt", weights_only=True))
MODEL.eval()

INPUTS = {
    batch: sorted((os.path.join("/app/inputs", batch, file) for file in os.listdir(os.path.join("/app/inputs", batch))),
                  key=lambda path: int(os.path.basename(path).split("-")[0]))
    for batch in ("A", "B")
}


def handle(name: str) -> str:
    selector, paths = choose("cnn_serving", INPUTS, name, default="A")
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    with torch.no_grad():
        predicted = MODEL(to_tensor(images)).argmax(1)
    labels = ",".join(CLASSES[i] for i in predicted)
    return f"classified image batch {selector} ({len(images)} images, {SIZE}x{SIZE}): {labels}"


if __name__ == "__main__":
    print("cnn_serving: model loaded", flush=True)
    serve("cnn_serving", handle)
