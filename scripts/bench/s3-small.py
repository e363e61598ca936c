#!/usr/bin/env python3
"""PUT or GET every file of a folder over S3 with 4 threads (one boto3 client and
keep-alive connection each), or one large file with boto3's managed multipart transfer
(8 MiB parts, 4 threads). Prints files per second, or MB/s for the large file.
Usage: s3-small.py ENDPOINT KEY SECRET put|get LOCAL_DIR BUCKET PREFIX [NAMES_DIR]
       s3-small.py ENDPOINT KEY SECRET upload|download LOCAL_FILE BUCKET KEY"""
import concurrent.futures, os, sys, time

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

def client(endpoint, key, secret):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                        aws_secret_access_key=secret, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, max_pool_connections=8))

def main():
    endpoint, key, secret, method, local, bucket, prefix = sys.argv[1:8]
    if method in ("upload", "download"):
        s3 = client(endpoint, key, secret)
        cfg = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20,
                             max_concurrency=4)
        t0 = time.monotonic()
        if method == "upload":
            s3.upload_file(local, bucket, prefix, Config=cfg)
        else:
            s3.download_file(bucket, prefix, local, Config=cfg)
        print(f"{os.path.getsize(local) / 1e6 / (time.monotonic() - t0):.1f}")
        return
    names = sorted(os.listdir(local if method == "put" else sys.argv[8]))
    os.makedirs(local, exist_ok=True)

    def worker(part):
        s3 = client(endpoint, key, secret)
        for name in part:
            k = f"{prefix}/{name}"
            if method == "put":
                with open(os.path.join(local, name), "rb") as f:
                    s3.put_object(Bucket=bucket, Key=k, Body=f.read())
            else:
                body = s3.get_object(Bucket=bucket, Key=k)["Body"].read()
                with open(os.path.join(local, name), "wb") as f:
                    f.write(body)

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, [names[i::4] for i in range(4)]))
    print(f"{len(names) / (time.monotonic() - t0):.1f}")

main()
