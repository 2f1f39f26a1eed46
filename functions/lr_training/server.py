"""lr_training: trains a logistic regression on a labelled data set (FunctionBench's lr_training).

Each invocation reads a CSV of reviews from the image, holds out the last fifth for testing,
fits a TF-IDF vectoriser and a logistic regression (scikit-learn) on the rest, scores it on the
held-out part and serialises the model. Inputs (the request's name): "small" (2,500 reviews)
and "large" (10,000), generated at build time by generate.py; an empty name means "small".
Reply: "trained on <n> samples, tested on <m>: accuracy <a>, model <bytes> bytes".
"""
import csv
import pickle

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from vhive_function import choose, serve

INPUTS = {"small": "/app/inputs/small.csv", "large": "/app/inputs/large.csv"}


def handle(name: str) -> str:
    selector, path = choose("lr_training", INPUTS, name, default="small")
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    split = len(rows) * 4 // 5
    train, test = rows[:split], rows[split:]
    model = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))
    model.fit([row["text"] for row in train], [row["label"] for row in train])
    accuracy = model.score([row["text"] for row in test], [row["label"] for row in test])
    size = len(pickle.dumps(model))
    return f"trained on {len(train)} samples, tested on {len(test)}: accuracy {accuracy:.3f}, model {size} bytes"


if __name__ == "__main__":
    serve("lr_training", handle)
