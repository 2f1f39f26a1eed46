"""Build-time trainer for lr_serving: fits the model that the function serves, from a fixed seed.

A TF-IDF vectoriser and a logistic regression, fitted on 2,000 synthetic reviews (reviews.py,
seed 1) and saved with joblib to /app/model.joblib, as FunctionBench's lr_serving loads a
model trained offline. Run in the image at build time.
"""
import joblib
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from reviews import reviews

MODEL = "/app/model.joblib"


def main():
    data = reviews(seed=1, count=2000)
    texts, labels = [text for text, _ in data], [label for _, label in data]
    model = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))
    model.fit(texts, labels)
    joblib.dump(model, MODEL)
    print(f"lr_serving: trained on {len(texts)} reviews, training accuracy {model.score(texts, labels):.3f}, saved {MODEL}")


if __name__ == "__main__":
    main()
