"""image_rotate: rotates, flips and filters an image with Pillow (FunctionBench's image_processing).

Each invocation decodes the JPEG from the image, rotates it by 90 degrees, mirrors it, blurs
it, converts it to greyscale and encodes it as JPEG again. Inputs (the request's name): "A"
(512x512) and "B" (768x512), generated at build time by generate.py; an empty name means "A".
Reply: "rotated image <input>: <w>x<h> -> <w>x<h>, mean grey <mean>, jpeg <bytes> bytes,
sha256 <prefix>".
"""
import io

from PIL import Image, ImageFilter, ImageStat

from vhive_function import choose, digest, serve

INPUTS = {"A": "/app/inputs/A.jpg", "B": "/app/inputs/B.jpg"}


def handle(name: str) -> str:
    selector, path = choose("image_rotate", INPUTS, name, default="A")
    with Image.open(path) as original:
        original.load()
    image = original.transpose(Image.Transpose.ROTATE_90)
    image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    image = image.filter(ImageFilter.GaussianBlur(2))
    image = image.convert("L")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    mean = ImageStat.Stat(image).mean[0]
    return (
        f"rotated image {selector}: {original.width}x{original.height} -> {image.width}x{image.height}, "
        f"mean grey {mean:.1f}, jpeg {out.tell()} bytes, sha256 {digest(out.getvalue())}"
    )


if __name__ == "__main__":
    serve("image_rotate", handle)
