"""rnn_serving: generates names with a small recurrent network in PyTorch (FunctionBench's rnn_serving).

The character-level LSTM (CharLSTM, charnet.py; trained at build time by generate.py on
made-up names) is loaded at start-up; each invocation generates one name per start letter,
greedily, character by character. Inputs (the request's name): "A" (start letters "abc") and
"B" (start letters "klmnoprstv"); an empty name means "A". Reply: "generated <n> names from
'<letters>': <name>,<name>,...".
"""
import torch

from charnet import CharLSTM
from vhive_function import choose, serve

torch.set_num_threads(1)  # one vCPU
MODEL = CharLSTM()
MODEL.load_state_dict(torch.load("/app/model.pt", weights_only=True))
MODEL.eval()

INPUTS = {"A": "abc", "B": "klmnoprstv"}


def handle(name: str) -> str:
    selector, letters = choose("rnn_serving", INPUTS, name, default="A")
    generated = [MODEL.generate(letter) for letter in letters]
    return f"generated {len(generated)} names from '{letters}': {','.join(generated)}"


if __name__ == "__main__":
    print("rnn_serving: model loaded", flush=True)
    serve("rnn_serving", handle)
