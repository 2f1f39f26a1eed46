"""Build-time trainer for cnn_serving: trains ShapeNet on generated pictures and writes the inputs.

Trains on 2,400 pictures (600 per class, seed 1) for 6 epochs and saves the weights to
/app/model.pt; writes two input batches of 8 pictures each as PNG (A: seed 101, B: seed 202)
under /app/inputs/<batch>/, named <index>-<true class>.png. Deterministic seeds throughout.
Run in the image at build time.
"""
import os
import random

import torch
from torch import nn

from shapes import CLASSES, ShapeNet, picture, to_tensor

MODEL = "/app/model.pt"
INPUTS = "/app/inputs"
BATCHES = {"A": 101, "B": 202}


def main():
    torch.manual_seed(0)
    rng = random.Random(1)
    labels = [i % len(CLASSES) for i in range(2400)]
    rng.shuffle(labels)
    images = to_tensor([picture(rng, CLASSES[label]) for label in labels])
    targets = torch.tensor(labels)
    model = ShapeNet()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(6):
        order = torch.randperm(len(labels))
        for start in range(0, len(labels), 64):
            batch = order[start:start + 64]
            optimiser.zero_grad()
            loss = loss_fn(model(images[batch]), targets[batch])
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            accuracy = (model(images).argmax(1) == targets).float().mean().item()
        print(f"cnn_serving: epoch {epoch + 1}, loss {loss.item():.3f}, training accuracy {accuracy:.3f}")
    torch.save(model.state_dict(), MODEL)

    model.eval()
    for batch, seed in BATCHES.items():
        rng = random.Random(seed)
        os.makedirs(os.path.join(INPUTS, batch), exist_ok=True)
        shapes = [CLASSES[i % len(CLASSES)] for i in range(8)]
        rng.shuffle(shapes)
        pictures = [picture(rng, shape) for shape in shapes]
        for index, (shape, image) in enumerate(zip(shapes, pictures)):
            image.save(os.path.join(INPUTS, batch, f"{index}-{shape}.png"))
        with torch.no_grad():
            predicted = [CLASSES[i] for i in model(to_tensor(pictures)).argmax(1)]
        print(f"cnn_serving: batch {batch}: true {','.join(shapes)}; predicted {','.join(predicted)}")


if __name__ == "__main__":
    main()
