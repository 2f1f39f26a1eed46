"""Build-time generator for image_rotate: two JPEG photographs-to-be from fixed seeds.

A.jpg (512x512) and B.jpg (768x512): a colour gradient, random shapes and per-pixel noise, so
they compress like photographs rather than flat drawings. Run in the image at build time;
writes /app/inputs/A.jpg and /app/inputs/B.jpg.
"""
import os
import random

from PIL import Image, ImageChops, ImageDraw

OUT = "/app/inputs"


def picture(width, height, seed):
    rng = random.Random(seed)
    red = Image.linear_gradient("L").resize((width, height))
    green = Image.radial_gradient("L").resize((width, height))
    blue = red.transpose(Image.Transpose.ROTATE_90).resize((width, height))
    image = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = x0 + rng.randint(10, width // 3), y0 + rng.randint(10, height // 3)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    noise = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    return ImageChops.blend(image, noise, 0.15)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (width, height, seed) in {"A": (512, 512, 1), "B": (768, 512, 2)}.items():
        path = os.path.join(OUT, f"{name}.jpg")
        picture(width, height, seed).save(path, quality=90)
        print(f"image_rotate: wrote {path}, {width}x{height}, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
