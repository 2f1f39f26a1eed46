"""Shared by rnn_serving's trainer and server: the made-up names and the network that writes them.

FunctionBench's rnn_serving generates names with a character-level recurrent network trained on
real names of many languages; the images may not download any, so the corpus here is 600
made-up names built from syllables with a fixed seed. CharLSTM reads one character at a time
(an embedding, one LSTM layer of 128 units, a linear layer over the alphabet); a name ends with
"." (END).
"""
import random

import torch
from torch import nn

END = "."
ALPHABET = END + "abcdefghijklmnopqrstuvwxyz"
SYLLABLES = ["ka", "ri", "mo", "len", "ta", "vi", "sor", "an", "el", "do", "ru", "mi", "sha", "bel", "to", "na",
             "gor", "il", "fe", "zu", "pa", "quin", "ya", "wen", "xo", "ha", "jo", "cy", "ul", "ber"]


def names(seed: int = 1, count: int = 600) -> list[str]:
    rng = random.Random(seed)
    result = []
    while len(result) < count:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
        if name not in result:
            result.append(name)
    return result


def encode(text: str) -> torch.Tensor:
    return torch.tensor([ALPHABET.index(char) for char in text])


class CharLSTM(nn.Module):
    def __init__(self, hidden: int = 128):
        super().__init__()
        self.embed = nn.Embedding(len(ALPHABET), 32)
        self.lstm = nn.LSTM(32, hidden, batch_first=True)
        self.out = nn.Linear(hidden, len(ALPHABET))

    def forward(self, chars: torch.Tensor, state=None):
        output, state = self.lstm(self.embed(chars), state)
        return self.out(output), state

    @torch.no_grad()
    def generate(self, start: str, max_length: int = 20) -> str:
        """Greedy continuation of `start` (lower-case letters) until END or max_length characters."""
        logits, state = self(encode(END + start).unsqueeze(0))
        text = start
        while len(text) < max_length:
            char = ALPHABET[logits[0, -1].argmax().item()]
            if char == END:
                break
            text += char
            logits, state = self(encode(char).unsqueeze(0), state)
        return text
