"""Build-time trainer for rnn_serving: trains CharLSTM on the made-up names and saves it.

Each name is trained as END + name + END (so generation can start from nothing but END), in
shuffled batches of 64 padded with END, for 40 epochs with Adam; seeds fixed. Saves the weights
to /app/model.pt. Run in the image at build time.
"""
import random

import torch
from torch import nn

from charnet import END, CharLSTM, encode, names

MODEL = "/app/model.pt"


def main():
    torch.manual_seed(0)
    rng = random.Random(2)
    corpus = names()
    width = max(len(name) for name in corpus) + 2
    sequences = torch.stack([encode((END + name + END).ljust(width, END)) for name in corpus])
    model = CharLSTM()
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
    loss_fn = nn.CrossEntropyLoss()
    order = list(range(len(corpus)))
    for epoch in range(40):
        rng.shuffle(order)
        for start in range(0, len(order), 64):
            batch = sequences[order[start:start + 64]]
            optimiser.zero_grad()
            logits, _ = model(batch[:, :-1])
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
            loss.backward()
            optimiser.step()
        if (epoch + 1) % 10 == 0:
            print(f"rnn_serving: epoch {epoch + 1}, loss {loss.item():.3f}")
    torch.save(model.state_dict(), MODEL)
    model.eval()
    print("rnn_serving: samples " + ",".join(model.generate(letter) for letter in "abcdefgh"))


if __name__ == "__main__":
    main()
