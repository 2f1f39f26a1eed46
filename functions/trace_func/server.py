"""trace_func: the function a trace replay deploys once per sampled trace function.

Each request (faas.Executor/Execute, protos/faas.proto, as vHive's loader defines it) says how
long to run and how much memory to touch: the function writes one byte to every page of a fresh
buffer of memoryInMebiBytes MiB, then spins on the CPU until runtimeInMilliSec has passed since
the request arrived (a busy loop, as the loader's trace functions do: the trace's durations are
execution times). The buffer is freed after the reply. A request for more memory than the guest
can give answers RESOURCE_EXHAUSTED.

Reply: "trace_func: ran <ms> ms, touched <MiB> MiB", with durationInMicroSec and memoryUsageInKb.
"""
import mmap
import time

import grpc

import faas_pb2
import faas_pb2_grpc
from vhive_function import serve_service

PAGE_BYTES = mmap.PAGESIZE
MIB = 1024 * 1024


def touch(mib):
    """A buffer of `mib` MiB with every page written, so the guest really backs it."""
    buffer = bytearray(mib * MIB)
    # One byte per page, at C speed (an extended-slice assignment, no Python loop).
    buffer[::PAGE_BYTES] = b"\x01" * len(range(0, len(buffer), PAGE_BYTES))
    return buffer


class Executor(faas_pb2_grpc.ExecutorServicer):
    def Execute(self, request, context):
        started = time.monotonic()
        deadline = started + request.runtimeInMilliSec / 1000
        try:
            buffer = touch(request.memoryInMebiBytes)
        except MemoryError:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"trace_func: cannot touch {request.memoryInMebiBytes} MiB in this guest")
        while time.monotonic() < deadline:
            pass
        ran_s = time.monotonic() - started
        touched_kib = len(buffer) // 1024
        del buffer
        return faas_pb2.FaasReply(
            message=f"trace_func: ran {round(ran_s * 1000)} ms, touched {request.memoryInMebiBytes} MiB",
            durationInMicroSec=round(ran_s * 1_000_000),
            memoryUsageInKb=touched_kib,
        )


if __name__ == "__main__":
    serve_service("trace_func", lambda server: faas_pb2_grpc.add_ExecutorServicer_to_server(Executor(), server))
