"""wordcount: the README's example of a function with a gRPC service of its own.

Counts the words of a text that are not stop words and names the most frequent ones. The stop
words are read from data/stopwords.txt in the working directory (the recipe copies the data/
directory in whole), as functions that read input files from their working directory do.
"""
import collections
import re
from concurrent import futures

import grpc

import wordcount_pb2
import wordcount_pb2_grpc

with open("data/stopwords.txt", encoding="utf-8") as stopwords:
    STOP_WORDS = set(stopwords.read().split())


class WordCount(wordcount_pb2_grpc.WordCountServicer):
    def Count(self, request, context):
        if request.top < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"top must be 0 or more, not {request.top}")
        words = [word for word in re.findall(r"[a-z']+", request.text.lower()) if word not in STOP_WORDS]
        counts = collections.Counter(words)
        # Most frequent first; ties in alphabetical order, so the reply is deterministic.
        ranked = sorted(counts, key=lambda word: (-counts[word], word))
        return wordcount_pb2.CountReply(words=len(words), top_words=ranked[: request.top])


server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
wordcount_pb2_grpc.add_WordCountServicer_to_server(WordCount(), server)
server.add_insecure_port("0.0.0.0:50051")
server.start()
server.wait_for_termination()
