#!/usr/bin/env python3
"""Plain S3 reads with boto3: what a user without a cache does instead.

Usage: s3_plain_read.py MODE ENDPOINT BUCKET KEY_OR_PREFIX

  get       one whole-object GET of KEY, streamed and dropped
  download  boto3's download_fileobj of KEY (what `aws s3 cp` does:
            parallel ranged GETs of 8 MiB, 10 threads)
  list-get  list PREFIX, then one GET per object, one after the other

Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Prints
{"seconds": S, "bytes": N, "objects": K} for the reads alone (without
Python's start-up).
"""

import json
import sys
import time

import boto3
from botocore.config import Config


class Discard:
    """A file-like sink that keeps nothing."""

    def __init__(self):
        self.bytes = 0

    def write(self, b):
        self.bytes += len(b)
        return len(b)


def read_body(s3, bucket, key):
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    n = 0
    while True:
        chunk = body.read(1 << 20)
        if not chunk:
            return n
        n += len(chunk)


def main():
    mode, endpoint, bucket, target = sys.argv[1:5]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=16),
    )
    # One request first, so that the connection and credentials are set up
    # outside the measurement, as they would be in a long-running program.
    s3.list_objects_v2(Bucket=bucket, MaxKeys=1)
    start = time.monotonic()
    objects, n = 1, 0
    if mode == "get":
        n = read_body(s3, bucket, target)
    elif mode == "download":
        sink = Discard()
        s3.download_fileobj(bucket, target, sink)
        n = sink.bytes
    elif mode == "list-get":
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=target
        ):
            keys += [o["Key"] for o in page.get("Contents", [])]
        for key in keys:
            n += read_body(s3, bucket, key)
        objects = len(keys)
    else:
        sys.exit(f"unknown mode {mode}")
    seconds = time.monotonic() - start
    print(json.dumps({"seconds": seconds, "bytes": n, "objects": objects}))


if __name__ == "__main__":
    main()
