"""The gRPC side of every function in vhive's suite, shared so each server is only its work.

A function's server.py imports this module (its recipe copies it to /app next to the
helloworld_pb2 stubs that the recipe's build step generates), loads what it needs (inputs,
models) at start-up, and calls serve() with a handle(name) -> str:

    from vhive_function import choose, serve

    INPUTS = {"small": ..., "large": ...}

    def handle(name: str) -> str:
        selector, data = choose("chameleon", INPUTS, name)
        return f"... {selector} ..."

    serve("chameleon", handle)

The request's `name` selects the input; the reply's `message` is a deterministic summary of the
result, so a caller can check it. handle raising ValueError (an unknown input) answers
INVALID_ARGUMENT with its message; any other exception answers INTERNAL and prints its
traceback to the console (the serial log).

After a restore from a snapshot, every clone resumes with the same process state, Python's
`random` included. vhive reseeds the guest kernel (os.urandom, uuid.uuid4 and /dev/urandom are
fresh by themselves), and serve() registers with the guest agent's after-restore hook socket
so that `random` is reseeded too, before the clone serves its first request. A function with
state of its own to refresh (another PRNG, a cached token) adds a hook:

    from vhive_function import after_restore

    @after_restore
    def fresh_numpy_seed():
        numpy.random.seed()
"""
import hashlib
import os
import random
import socket
import sys
import threading
import traceback
from concurrent import futures

import grpc

import helloworld_pb2
import helloworld_pb2_grpc

PORT = 50051

# The guest has one vCPU and CPython holds the GIL: more worker threads would only interleave
# invocations, so concurrent calls queue and run one at a time.
MAX_WORKERS = 1


# Where the guest agent takes after-restore hooks (vhive's init.sh starts it; see the README).
RESTORE_SOCKET = "/run/vhive/restore.sock"

# Run after every restore, in order, before the first request; Python's global PRNG first.
_restore_hooks = [random.seed]


def after_restore(hook):
    """Run hook() after every restore from a snapshot, before the restored instance serves.

    Usable as a decorator; returns hook. An exception in a hook is printed and the others run.
    """
    _restore_hooks.append(hook)
    return hook


def _run_restore_hooks():
    for hook in _restore_hooks:
        try:
            hook()
        except Exception:  # a broken hook must not keep the others, or the reply, from running
            traceback.print_exc(file=sys.stdout)


def listen_for_restores(path=RESTORE_SOCKET):
    """Register with the guest agent: after each restore it says "restored", we run the hooks
    and answer "ok". Returns False where there is no agent (the function runs outside vhive).

    The registration is complete when this returns (the agent's "hello" was read), so a
    snapshot taken after the function first answers always includes it.
    """
    if not os.path.exists(path):
        return False
    agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    agent.connect(path)
    lines = agent.makefile("rb")
    if lines.readline() != b"hello\n":
        agent.close()
        return False

    def serve_restores():
        for line in lines:
            if line.strip() == b"restored":
                _run_restore_hooks()
                agent.sendall(b"ok\n")

    threading.Thread(target=serve_restores, name="vhive-after-restore", daemon=True).start()
    return True


def choose(function, inputs, name, default=None):
    """The (selector, input) that `name` selects from `inputs`; an empty name selects `default`.

    Raises ValueError naming the valid selectors when `name` selects nothing.
    """
    selector = name or default
    if selector not in inputs:
        valid = ", ".join(repr(key) for key in inputs)
        shown = repr(name) if name else "an empty name"
        raise ValueError(f"{function}: unknown input {shown}; the request's name must be one of {valid}")
    return selector, inputs[selector]


def digest(data, chars=12):
    """A short, stable fingerprint of bytes for a reply: the first `chars` hex digits of sha256."""
    return hashlib.sha256(data).hexdigest()[:chars]


class _Greeter(helloworld_pb2_grpc.GreeterServicer):
    def __init__(self, function, handle):
        self._function = function
        self._handle = handle

    def SayHello(self, request, context):
        try:
            message = self._handle(request.name)
        except ValueError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except Exception as error:  # any other failure is the function's bug: say so, keep serving
            traceback.print_exc(file=sys.stdout)
            context.abort(grpc.StatusCode.INTERNAL, f"{self._function} failed: {type(error).__name__}: {error}")
        return helloworld_pb2.HelloReply(message=message)


def serve(function, handle, port=PORT):
    """Serve helloworld.Greeter/SayHello on [::]:port with `handle` until the process is killed."""
    serve_service(function, lambda server: helloworld_pb2_grpc.add_GreeterServicer_to_server(_Greeter(function, handle), server), port)


def serve_service(function, register, port=PORT):
    """Serve whatever `register(server)` adds (a function with a service of its own) until killed."""
    listen_for_restores()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=MAX_WORKERS))
    register(server)
    server.add_insecure_port(f"[::]:{port}")
    server.start()
    print(f"{function} listening on {port}", flush=True)
    server.wait_for_termination()
