"""Shared by cnn_serving's trainer and server: the shape pictures and the network that tells them apart.

A picture is 64x64 RGB: a dark background of random colour, one bright shape (circle, square,
triangle or cross) of random colour, size and position, and a little noise. ShapeNet is a
small convolutional network: three 3x3 convolution + ReLU + 2x2 max-pool stages (16, 32, 64
channels), global average pooling and a linear layer over the four classes.
"""
import random

import torch
from PIL import Image, ImageChops, ImageDraw
from torch import nn

CLASSES = ("circle", "square", "triangle", "cross")
SIZE = 64


def picture(rng: random.Random, shape: str) -> Image.Image:
    background = tuple(rng.randrange(0, 90) for _ in range(3))
    colour = tuple(rng.randrange(150, 256) for _ in range(3))
    image = Image.new("RGB", (SIZE, SIZE), background)
    draw = ImageDraw.Draw(image)
    side = rng.randint(24, 44)
    x, y = rng.randint(2, SIZE - side - 2), rng.randint(2, SIZE - side - 2)
    if shape == "circle":
        draw.ellipse((x, y, x + side, y + side), fill=colour)
    elif shape == "square":
        draw.rectangle((x, y, x + side, y + side), fill=colour)
    elif shape == "triangle":
        draw.polygon([(x + side / 2, y), (x, y + side), (x + side, y + side)], fill=colour)
    else:
        bar = max(4, side // 4)
        draw.rectangle((x + (side - bar) // 2, y, x + (side + bar) // 2, y + side), fill=colour)
        draw.rectangle((x, y + (side - bar) // 2, x + side, y + (side + bar) // 2), fill=colour)
    noise = Image.frombytes("RGB", (SIZE, SIZE), rng.randbytes(SIZE * SIZE * 3))
    return ImageChops.blend(image, noise, 0.1)


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """A batch (N, 3, 64, 64) of floats in [0, 1]."""
    data = torch.stack([torch.frombuffer(bytearray(image.convert("RGB").tobytes()), dtype=torch.uint8) for image in images])
    return data.view(len(images), SIZE, SIZE, 3).permute(0, 3, 1, 2).float() / 255.0


class ShapeNet(nn.Module):
    def __init__(self):
        super().__init__()
        stages = []
        channels = 3
        for width in (16, 32, 64):
            stages += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*stages)
        self.classifier = nn.Linear(channels, len(CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))
