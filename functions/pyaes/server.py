"""pyaes: encrypts and decrypts a message with pure-Python AES (FunctionBench's pyaes).

Each round encrypts the message with AES-256 in CTR mode and decrypts it again, checking that
the plaintext comes back. Inputs (the request's name): "small" (1 KiB message, 10 rounds) and
"large" (4 KiB, 10 rounds); an empty name means "small". The messages are pseudo-random text
from a fixed seed. Reply: "pyaes <input>: <rounds> rounds of AES-256-CTR on <bytes> bytes,
ciphertext sha256 <prefix>, decrypted ok".
"""
import random
import string

import pyaes

from vhive_function import choose, digest, serve

KEY = bytes(range(32))  # AES-256; fixed so replies are deterministic


def message(length: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_letters + string.digits + " ") for _ in range(length)).encode()


# message, rounds
INPUTS = {"small": (message(1024, 1), 10), "large": (message(4096, 2), 10)}


def handle(name: str) -> str:
    selector, (plaintext, rounds) = choose("pyaes", INPUTS, name, default="small")
    for _ in range(rounds):
        ciphertext = pyaes.AESModeOfOperationCTR(KEY).encrypt(plaintext)
        decrypted = pyaes.AESModeOfOperationCTR(KEY).decrypt(ciphertext)
        if decrypted != plaintext:
            raise RuntimeError("decryption did not give the plaintext back")
    return f"pyaes {selector}: {rounds} rounds of AES-256-CTR on {len(plaintext)} bytes, ciphertext sha256 {digest(ciphertext)}, decrypted ok"


if __name__ == "__main__":
    serve("pyaes", handle)
