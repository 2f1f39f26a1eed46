"""Synthetic product reviews with a sentiment label, for lr_serving and lr_training.

FunctionBench trains its logistic regressions on Amazon reviews; the images may not download
anything, so this module writes look-alike reviews from fixed word lists and a seed instead:
a few sentiment words (four in five from the review's own side, one in five from the other,
so a classifier cannot be perfect) mixed into neutral product talk. Same seed, same reviews.
"""
import random

POSITIVE = [
    "excellent", "great", "love", "perfect", "amazing", "reliable", "sturdy", "fast", "beautiful", "happy",
    "recommend", "wonderful", "solid", "comfortable", "bright", "quiet", "smooth", "delighted", "best", "superb",
]
NEGATIVE = [
    "terrible", "awful", "broke", "useless", "slow", "disappointed", "cheap", "flimsy", "noisy", "refund",
    "worst", "defective", "poor", "returned", "annoying", "faulty", "waste", "horrible", "leaks", "cracked",
]
NEUTRAL = [
    "the", "a", "this", "it", "battery", "screen", "case", "cable", "charger", "kettle", "blender", "lamp",
    "headphones", "keyboard", "shoes", "bag", "after", "two", "weeks", "delivery", "price", "box", "size", "colour",
    "is", "was", "and", "with", "for", "my", "kitchen", "daughter", "use", "every", "day", "arrived", "quality",
]

LABELS = ("neg", "pos")


def review(rng: random.Random, positive: bool) -> str:
    words = []
    for _ in range(rng.randint(8, 24)):
        if rng.random() < 0.3:
            own_side = rng.random() < 0.8
            words.append(rng.choice(POSITIVE if positive == own_side else NEGATIVE))
        else:
            words.append(rng.choice(NEUTRAL))
    return " ".join(words)


def reviews(seed: int, count: int) -> list[tuple[str, str]]:
    """`count` (text, label) pairs, label "pos" or "neg", half of each in random order."""
    rng = random.Random(seed)
    labels = [LABELS[i % 2] for i in range(count)]
    rng.shuffle(labels)
    return [(review(rng, label == "pos"), label) for label in labels]
