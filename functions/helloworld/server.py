"""helloworld: the smallest vhive function, a gRPC Greeter as vSwarm's helloworld."""
from concurrent import futures

import grpc

import helloworld_pb2
import helloworld_pb2_grpc

PORT = 50051


class Greeter(helloworld_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):
        return helloworld_pb2.HelloReply(message=f"Hello, {request.name or 'world'}!")


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    server.add_insecure_port(f"[::]:{PORT}")
    server.start()
    print(f"helloworld listening on {PORT}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
