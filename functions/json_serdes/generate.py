"""Build-time generator for json_serdes: two JSON documents of a few MB from fixed seeds.

A.json: an array of user records (flat objects, short strings); B.json: an object of orders
with nested line items (deeper nesting, more numbers). Run in the image at build time; writes
/app/inputs/A.json and /app/inputs/B.json.
"""
import json
import os
import random
import string

OUT = "/app/inputs"
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
         "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"]


def token(rng, length):
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(length))


def users(rng, count):
    return [
        {
            "id": i,
            "name": f"{token(rng, 6).title()} {token(rng, 8).title()}",
            "email": f"{token(rng, 7)}@{rng.choice(WORDS)}.example",
            "age": rng.randint(18, 90),
            "active": rng.random() < 0.7,
            "score": round(rng.uniform(0, 100), 3),
            "tags": rng.sample(WORDS, rng.randint(1, 4)),
            "bio": " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 20))),
        }
        for i in range(count)
    ]


def orders(rng, count):
    return {
        "generated": "2021-04-19T00:00:00Z",
        "currency": "EUR",
        "orders": {
            f"order-{i:06d}": {
                "customer": {"id": rng.randint(1, 50_000), "country": rng.choice(["DE", "FR", "CH", "NL", "IT", "ES"])},
                "items": [
                    {"sku": token(rng, 10), "qty": rng.randint(1, 5), "price": round(rng.uniform(1, 500), 2),
                     "attrs": {"colour": rng.choice(WORDS), "size": rng.choice(["S", "M", "L", "XL"])}}
                    for _ in range(rng.randint(1, 6))
                ],
                "paid": rng.random() < 0.9,
                "notes": None if rng.random() < 0.8 else " ".join(rng.choice(WORDS) for _ in range(8)),
            }
            for i in range(count)
        },
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    documents = {"A": users(random.Random(1), 10_000), "B": orders(random.Random(2), 7_000)}
    for name, document in documents.items():
        path = os.path.join(OUT, f"{name}.json")
        with open(path, "w") as file:
            json.dump(document, file)
        print(f"json_serdes: wrote {path}, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
