"""json_serdes: parses a JSON document of a few MB and serialises it again (FunctionBench's json_serdes).

Each invocation reads the document from the image, parses it, and serialises it with sorted
keys. Inputs (the request's name): "A" (2.4 MB, an array of 10,000 user records) and "B"
(3.1 MB, 7,000 orders with nested items), generated at build time by generate.py; an empty name
means "A". Reply: "json <input>: parsed <bytes> bytes (<n> top-level entries), re-serialised
<bytes> bytes, sha256 <prefix>".
"""
import json

from vhive_function import choose, digest, serve

INPUTS = {"A": "/app/inputs/A.json", "B": "/app/inputs/B.json"}


def handle(name: str) -> str:
    selector, path = choose("json_serdes", INPUTS, name, default="A")
    with open(path, "rb") as file:
        text = file.read()
    document = json.loads(text)
    entries = len(document["orders"]) if isinstance(document, dict) else len(document)
    out = json.dumps(document, sort_keys=True).encode()
    return f"json {selector}: parsed {len(text)} bytes ({entries} entries), re-serialised {len(out)} bytes, sha256 {digest(out)}"


if __name__ == "__main__":
    serve("json_serdes", handle)
