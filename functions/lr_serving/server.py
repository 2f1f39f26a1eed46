"""lr_serving: classifies review texts with a trained logistic regression (FunctionBench's lr_serving).

The scikit-learn model (TF-IDF + logistic regression, trained at build time by generate.py) is
loaded at start-up; each invocation classifies a batch of texts as "pos" or "neg". Inputs (the
request's name): "A" (4 hand-written reviews) and "B" (200 synthetic reviews, seed 7); an empty
name means "A". Replies: "classified 4 texts: pos,neg,pos,neg" for A, and for B the counts and
how many match the synthetic labels: "classified 200 texts: 103 pos, 97 neg (181 as labelled)".
"""
import joblib

from reviews import reviews
from vhive_function import choose, serve

MODEL = joblib.load("/app/model.joblib")

HAND_WRITTEN = [
    "excellent kettle, I love it and it is fast and quiet",
    "the charger broke after two weeks, terrible quality, I want a refund",
    "great headphones, comfortable and the sound is amazing",
    "cheap flimsy case, cracked on the first day, worst purchase",
]
GENERATED = reviews(seed=7, count=200)

INPUTS = {"A": (HAND_WRITTEN, None), "B": ([text for text, _ in GENERATED], [label for _, label in GENERATED])}


def handle(name: str) -> str:
    selector, (texts, labels) = choose("lr_serving", INPUTS, name, default="A")
    predicted = list(MODEL.predict(texts))
    if labels is None:
        return f"classified {len(texts)} texts: {','.join(predicted)}"
    positive = predicted.count("pos")
    agree = sum(p == l for p, l in zip(predicted, labels))
    return f"classified {len(texts)} texts: {positive} pos, {len(texts) - positive} neg ({agree} as labelled)"


if __name__ == "__main__":
    print("lr_serving: model loaded", flush=True)
    serve("lr_serving", handle)
