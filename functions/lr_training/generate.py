"""Build-time generator for lr_training: two labelled review data sets as CSV, from fixed seeds.

/app/inputs/small.csv (2,500 reviews, seed 11) and /app/inputs/large.csv (10,000 reviews,
seed 12), columns label,text; FunctionBench's lr_training reads such a file of Amazon reviews.
Run in the image at build time.
"""
import csv
import os

from reviews import reviews

OUT = "/app/inputs"
SETS = {"small": (11, 2500), "large": (12, 10000)}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (seed, count) in SETS.items():
        path = os.path.join(OUT, f"{name}.csv")
        with open(path, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["label", "text"])
            for text, label in reviews(seed, count):
                writer.writerow([label, text])
        print(f"lr_training: wrote {path}, {count} reviews, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
