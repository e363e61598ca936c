"""Every S3 call the gateway answers, through boto3 (the AWS SDK for Python).

Run by tests/boto3.rs: boto3_check.py ENDPOINT KEY SECRET OTHER_KEY OTHER_SECRET.
Fails (an exception, exit 1) at the first answer that is not what S3 gives.
"""

import concurrent.futures
import hashlib
import os
import sys
import urllib.request

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, key, secret, other_key, other_secret = sys.argv[1:6]


def client(k, s):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=k,
        aws_secret_access_key=s,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


s3 = client(key, secret)
other = client(other_key, other_secret)


def error_of(call, *args, **kw):
    try:
        call(*args, **kw)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"{call.__name__} {args} {kw} succeeded")


def md5(b):
    return hashlib.md5(b).hexdigest()


# Buckets.
assert s3.list_buckets()["Buckets"] == []
s3.create_bucket(Bucket="photos")
s3.head_bucket(Bucket="photos")
assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["photos"]
assert error_of(s3.create_bucket, Bucket="photos")[0] == "BucketAlreadyOwnedByYou"
assert error_of(s3.head_bucket, Bucket="nothing")[1] == 404

# One object: metadata, type, ETag, ranges.
body = b"hello, quantum safe world\n" * 100
r = s3.put_object(Bucket="photos", Key="notes/hello.txt", Body=body,
                  ContentType="text/x-test", Metadata={"colour": "blue", "n": "1"},
                  CacheControl="max-age=60")
assert r["ETag"].strip('"') == md5(body), r["ETag"]
h = s3.head_object(Bucket="photos", Key="notes/hello.txt")
assert h["ContentLength"] == len(body)
assert h["ContentType"] == "text/x-test", h["ContentType"]
assert h["Metadata"] == {"colour": "blue", "n": "1"}, h["Metadata"]
assert h["CacheControl"] == "max-age=60"
assert h["ETag"].strip('"') == md5(body)
g = s3.get_object(Bucket="photos", Key="notes/hello.txt", Range="bytes=7-19")
assert g["Body"].read() == body[7:20]
assert g["ContentRange"] == f"bytes 7-19/{len(body)}", g["ContentRange"]
assert s3.get_object(Bucket="photos", Key="notes/hello.txt")["Body"].read() == body
assert error_of(s3.get_object, Bucket="photos", Key="notes/hello.txt",
                Range=f"bytes={len(body)}-")[0] == "InvalidRange"
assert error_of(s3.get_object, Bucket="photos", Key="nothing")[0] == "NoSuchKey"
assert error_of(s3.get_object, Bucket="nothing", Key="x")[0] == "NoSuchBucket"
# Content-MD5 is checked.
import base64
wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
assert error_of(s3.put_object, Bucket="photos", Key="bad-md5", Body=b"x",
                ContentMD5=wrong)[0] == "BadDigest"
# Keys that are no file paths are refused, not rewritten.
for bad in ["a//b", "a/../b", "./x"]:
    e = error_of(s3.put_object, Bucket="photos", Key=bad, Body=b"x")
    assert e[0] == "InvalidObjectName", (bad, e)
# A key under a file cannot be.
e = error_of(s3.put_object, Bucket="photos", Key="notes/hello.txt/x", Body=b"x")
assert e == ("PathConflict", 409), e
# A folder key.
s3.put_object(Bucket="photos", Key="empty-folder/", Body=b"")
assert s3.head_object(Bucket="photos", Key="empty-folder/")["ContentLength"] == 0

# Listings: prefix, delimiter, continuation, max-keys, start-after, url encoding.
keys = [f"dir/a/{i:02}" for i in range(23)] + ["dir/b/x", "dir/b+c %", "top"]
for k in keys:
    s3.put_object(Bucket="photos", Key=k, Body=k.encode())
everything = sorted(keys + ["notes/hello.txt", "empty-folder/"])
seen, token = [], None
while True:
    kw = {"ContinuationToken": token} if token else {}
    page = s3.list_objects_v2(Bucket="photos", MaxKeys=7, **kw)
    assert page["KeyCount"] <= 7
    seen += [o["Key"] for o in page.get("Contents", [])]
    if not page["IsTruncated"]:
        break
    token = page["NextContinuationToken"]
assert seen == everything, (seen, everything)
page = s3.list_objects_v2(Bucket="photos", Prefix="dir/", Delimiter="/")
assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["dir/a/", "dir/b/"], page
assert [o["Key"] for o in page["Contents"]] == ["dir/b+c %"]
page = s3.list_objects_v2(Bucket="photos", Prefix="dir/a/", StartAfter="dir/a/20")
assert [o["Key"] for o in page["Contents"]] == ["dir/a/21", "dir/a/22"]
paginator = s3.get_paginator("list_objects")  # ListObjects (v1), markers
v1 = [o["Key"] for p in paginator.paginate(Bucket="photos", PaginationConfig={"PageSize": 5})
      for o in p.get("Contents", [])]
assert v1 == everything, v1
obj = [o for o in s3.list_objects_v2(Bucket="photos", Prefix="notes/")["Contents"]][0]
assert obj["ETag"].strip('"') == md5(body) and obj["Size"] == len(body)

# Copies keep or replace metadata.
s3.copy_object(Bucket="photos", Key="copy.txt",
               CopySource={"Bucket": "photos", "Key": "notes/hello.txt"})
h = s3.head_object(Bucket="photos", Key="copy.txt")
assert h["Metadata"] == {"colour": "blue", "n": "1"} and h["ETag"].strip('"') == md5(body)
s3.copy_object(Bucket="photos", Key="copy2.txt", MetadataDirective="REPLACE",
               Metadata={"colour": "red"}, ContentType="text/plain",
               CopySource={"Bucket": "photos", "Key": "notes/hello.txt"})
assert s3.head_object(Bucket="photos", Key="copy2.txt")["Metadata"] == {"colour": "red"}

# Deletes, one and many; deleting what is not there is no error.
s3.delete_object(Bucket="photos", Key="copy2.txt")
s3.delete_object(Bucket="photos", Key="never-was")
r = s3.delete_objects(Bucket="photos", Delete={"Objects": [{"Key": "copy.txt"}, {"Key": "top"}]})
assert sorted(d["Key"] for d in r["Deleted"]) == ["copy.txt", "top"], r
assert error_of(s3.head_object, Bucket="photos", Key="top")[1] == 404

# Multipart: parts in order (assembled in place), out of order (copied), aborted.
part = 5 << 20
data = os.urandom(3 * part + 777)
pieces = [data[i:i + part] for i in range(0, len(data), part)]
for name, order in [("in-order.bin", [1, 2, 3, 4]), ("last-first.bin", [4, 2, 1, 3])]:
    up = s3.create_multipart_upload(Bucket="photos", Key=f"big/{name}",
                                    Metadata={"kind": "multipart"})
    etags = {}
    for n in order:
        etags[n] = s3.upload_part(Bucket="photos", Key=f"big/{name}", UploadId=up["UploadId"],
                                  PartNumber=n, Body=pieces[n - 1])["ETag"]
        assert etags[n].strip('"') == md5(pieces[n - 1])
    listed = s3.list_parts(Bucket="photos", Key=f"big/{name}", UploadId=up["UploadId"])
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3, 4]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="photos")["Uploads"]] \
        == [up["UploadId"]]
    done = s3.complete_multipart_upload(
        Bucket="photos", Key=f"big/{name}", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in [1, 2, 3, 4]]})
    want = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in pieces)).hexdigest() + "-4"
    assert done["ETag"].strip('"') == want, (done["ETag"], want)
    got = s3.get_object(Bucket="photos", Key=f"big/{name}")
    assert got["Body"].read() == data, name
    assert got["Metadata"] == {"kind": "multipart"}
    assert got["ETag"].strip('"') == want
up = s3.create_multipart_upload(Bucket="photos", Key="big/aborted.bin")
s3.upload_part(Bucket="photos", Key="big/aborted.bin", UploadId=up["UploadId"], PartNumber=1,
               Body=pieces[0])
assert error_of(s3.complete_multipart_upload, Bucket="photos", Key="big/aborted.bin",
                UploadId=up["UploadId"],
                MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": "x"}]})[0] == "InvalidPart"
s3.abort_multipart_upload(Bucket="photos", Key="big/aborted.bin", UploadId=up["UploadId"])
assert "Uploads" not in s3.list_multipart_uploads(Bucket="photos")
assert error_of(s3.list_parts, Bucket="photos", Key="big/aborted.bin",
                UploadId=up["UploadId"])[0] == "NoSuchUpload"
assert error_of(s3.head_object, Bucket="photos", Key="big/aborted.bin")[1] == 404

# The SDK's own managed transfer: parts in parallel threads, then a ranged parallel download.
src = os.path.join(os.environ.get("WORK", "/tmp"), "src.bin")
back = os.path.join(os.environ.get("WORK", "/tmp"), "back.bin")
with open(src, "wb") as f:
    f.write(os.urandom(23 << 20))
cfg = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=4)
s3.upload_file(src, "photos", "big/managed.bin", Config=cfg)
s3.download_file("photos", "big/managed.bin", back, Config=cfg)
assert open(src, "rb").read() == open(back, "rb").read()

# Presigned URLs, for a GET (boto3's default SigV2, and SigV4) and a PUT (SigV4), used
# with no SDK at all.
v4 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
for signer in [s3, v4]:
    url = signer.generate_presigned_url(
        "get_object", Params={"Bucket": "photos", "Key": "notes/hello.txt"}, ExpiresIn=300)
    assert urllib.request.urlopen(url).read() == body
url = v4.generate_presigned_url("put_object", Params={"Bucket": "photos", "Key": "presigned.txt"},
                                ExpiresIn=300)
req = urllib.request.Request(url, data=b"put by URL", method="PUT",
                             headers={"Content-Type": "application/octet-stream"})
assert urllib.request.urlopen(req).status == 200
assert s3.get_object(Bucket="photos", Key="presigned.txt")["Body"].read() == b"put by URL"

# Another account: its own empty view; this account's bucket is refused with 403.
assert other.list_buckets()["Buckets"] == []
assert error_of(other.list_objects_v2, Bucket="photos") == ("AccessDenied", 403)
assert error_of(other.get_object, Bucket="photos", Key="notes/hello.txt")[1] == 403
assert error_of(other.put_object, Bucket="photos", Key="x", Body=b"x")[1] == 403
# A wrong secret, an unknown key.
assert error_of(client(key, "wrong" * 8).list_buckets)[1] == 403
assert error_of(client("QSNOSUCHKEY000000000", secret).list_buckets)[1] == 403

# A bucket goes only when empty.
assert error_of(s3.delete_bucket, Bucket="photos")[0] == "BucketNotEmpty"
s3.create_bucket(Bucket="scratch")
s3.delete_bucket(Bucket="scratch")
assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["photos"]
print("boto3: all calls answered as S3 does")
