#!/usr/bin/env python3
"""PUT or GET every file of a folder over S3 with 4 keep-alive connections (one per
worker), each request signed with SigV4 (unsigned payload) by a few lines of hmac, as a
light client (boto3 costs milliseconds of CPU per request, more than the server); or one
large file with boto3's managed multipart transfer (8 MiB parts, 4 threads). Prints
files per second, or MB/s for the large file.
Usage: s3-small.py ENDPOINT KEY SECRET put|get LOCAL_DIR BUCKET PREFIX [NAMES_DIR]
       s3-small.py ENDPOINT KEY SECRET upload|download LOCAL_FILE BUCKET KEY
       s3-small.py ENDPOINT KEY SECRET parts LOCAL_FILE BUCKET KEY
`parts` is a multipart upload by this light client (8 MiB parts, 4 connections, unsigned
payloads), to tell the server's cost apart from boto3's."""
import concurrent.futures, hashlib, hmac, http.client, os, sys, time, urllib.parse

REGION = "us-east-1"


def signed(method, path, host, key, secret, query=""):
    """The headers of a SigV4-signed request for `path` (already URL-encoded) with the
    canonical (sorted, encoded) query string `query`."""
    amzdate = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    date = amzdate[:8]
    headers = {"host": host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": amzdate}
    names = sorted(headers)
    canonical = "\n".join([method, path, query, "".join(f"{k}:{headers[k]}\n" for k in names),
                           ";".join(names), "UNSIGNED-PAYLOAD"])
    scope = f"{date}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (date, REGION, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    del headers["host"]
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={key}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return headers


def multipart(endpoint, key, secret, method, local, bucket, name):
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                      aws_secret_access_key=secret, region_name=REGION,
                      config=Config(s3={"addressing_style": "path"}, max_pool_connections=8))
    cfg = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20,
                         max_concurrency=4)
    t0 = time.monotonic()
    if method == "upload":
        s3.upload_file(local, bucket, name, Config=cfg)
    else:
        s3.download_file(bucket, name, local, Config=cfg)
    print(f"{os.path.getsize(local) / 1e6 / (time.monotonic() - t0):.1f}")


def light_multipart(endpoint, key, secret, local, bucket, name, part=8 << 20):
    import re
    u = urllib.parse.urlparse(endpoint)
    host = f"{u.hostname}:{u.port}"
    path = "/" + urllib.parse.quote(f"{bucket}/{name}", safe="/~")

    def call(c, method, query, body=None):
        c.request(method, f"{path}?{query}", body, signed(method, path, host, key, secret, query))
        r = c.getresponse()
        data = r.read()
        assert r.status == 200, (r.status, data[:300])
        return r, data

    t0 = time.monotonic()
    c = http.client.HTTPConnection(u.hostname, u.port)
    _, data = call(c, "POST", "uploads=")
    upload = re.search(rb"<UploadId>([^<]+)</UploadId>", data).group(1).decode()
    quoted = urllib.parse.quote(upload, safe="~")
    size = os.path.getsize(local)
    numbers = list(range(1, (size + part - 1) // part + 1))
    etags = {}

    def worker(mine):
        conn = http.client.HTTPConnection(u.hostname, u.port)
        with open(local, "rb") as f:
            for n in mine:
                body = os.pread(f.fileno(), part, (n - 1) * part)
                r, _ = call(conn, "PUT", f"partNumber={n}&uploadId={quoted}", body)
                etags[n] = r.getheader("ETag")

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, [numbers[i::4] for i in range(4)]))
    parts = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{etags[n]}</ETag></Part>"
                    for n in numbers)
    call(c, "POST", f"uploadId={quoted}",
         f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode())
    print(f"{size / 1e6 / (time.monotonic() - t0):.1f}")


def main():
    endpoint, key, secret, method, local, bucket, prefix = sys.argv[1:8]
    if method in ("upload", "download"):
        return multipart(endpoint, key, secret, method, local, bucket, prefix)
    if method == "parts":
        return light_multipart(endpoint, key, secret, local, bucket, prefix)
    u = urllib.parse.urlparse(endpoint)
    host = f"{u.hostname}:{u.port}"
    names = sorted(os.listdir(local if method == "put" else sys.argv[8]))
    os.makedirs(local, exist_ok=True)

    def worker(part):
        c = http.client.HTTPConnection(u.hostname, u.port)
        for name in part:
            path = "/" + urllib.parse.quote(f"{bucket}/{prefix}/{name}", safe="/~")
            if method == "put":
                with open(os.path.join(local, name), "rb") as f:
                    body = f.read()
                c.request("PUT", path, body, signed("PUT", path, host, key, secret))
                r = c.getresponse(); r.read()
                assert r.status == 200, (r.status, name)
            else:
                c.request("GET", path, headers=signed("GET", path, host, key, secret))
                r = c.getresponse()
                body = r.read()
                assert r.status == 200, (r.status, name)
                with open(os.path.join(local, name), "wb") as f:
                    f.write(body)

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, [names[i::4] for i in range(4)]))
    print(f"{len(names) / (time.monotonic() - t0):.1f}")


main()
