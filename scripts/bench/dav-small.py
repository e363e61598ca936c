#!/usr/bin/env python3
"""PUT or GET every file of a folder over WebDAV with 4 keep-alive connections (one per
worker), Basic credentials on each request as WebDAV clients send them. Prints files per
second. Usage: dav-small.py DAV_URL USER PASSWORD put|get LOCAL_DIR REMOTE_FOLDER"""
import base64, concurrent.futures, http.client, os, sys, time, urllib.parse

def main():
    url, user, password, method, local, remote = sys.argv[1:7]
    u = urllib.parse.urlparse(url)
    auth = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    names = sorted(os.listdir(local)) if method == "put" else None
    base = u.path.rstrip("/") + "/" + urllib.parse.quote(remote.strip("/"))
    if method == "put":
        c = http.client.HTTPConnection(u.hostname, u.port)
        c.request("MKCOL", base + "/", headers=auth)
        r = c.getresponse(); r.read()
        assert r.status in (201, 405), r.status
    else:
        names = sorted(os.listdir(sys.argv[7]))  # the names put earlier
        os.makedirs(local, exist_ok=True)

    def worker(part):
        c = http.client.HTTPConnection(u.hostname, u.port)
        for name in part:
            path = f"{base}/{urllib.parse.quote(name)}"
            if method == "put":
                body = open(os.path.join(local, name), "rb").read()
                c.request("PUT", path, body, auth)
                r = c.getresponse(); r.read()
                assert r.status in (201, 204), r.status
            else:
                c.request("GET", path, headers=auth)
                r = c.getresponse()
                body = r.read()
                assert r.status == 200, r.status
                open(os.path.join(local, name), "wb").write(body)

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, [names[i::4] for i in range(4)]))
    print(f"{len(names) / (time.monotonic() - t0):.1f}")

main()
