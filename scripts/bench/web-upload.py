#!/usr/bin/env python3
"""Upload N files of SIZE bytes to the qsfs web drive the two ways the page does, with the
page's parallelism (3): plain PUT /api/file, and tus (POST /api/tus, then one PATCH with a
SHA-1 checksum). Prints `files_per_second` for the method. Keep-alive connections, one per
worker (as a browser keeps them)."""
import base64, concurrent.futures, hashlib, http.client, json, sys, time, urllib.parse

def main():
    base, user, password, method, folder, n, size = sys.argv[1:8]
    n, size = int(n), int(size)
    u = urllib.parse.urlparse(base)
    login = http.client.HTTPConnection(u.hostname, u.port)
    login.request("POST", "/api/login", json.dumps({"user": user, "password": password}),
                  {"Content-Type": "application/json"})
    r = login.getresponse()
    assert r.status == 200, r.read()
    cookie = r.getheader("Set-Cookie").split(";")[0]
    csrf = json.loads(r.read())["csrf"]
    auth = {"Cookie": cookie, "X-CSRF-Token": csrf}
    bodies = [(i.to_bytes(4, "big") * (size // 4 + 1))[:size] for i in range(n)]

    def worker(indices):
        c = http.client.HTTPConnection(u.hostname, u.port)
        for i in indices:
            path = f"{folder}/f{i:05}.bin"
            body = bodies[i]
            if method == "put":
                q = urllib.parse.quote(path, safe="")
                c.request("PUT", f"/api/file?path={q}&parents=1", body, auth)
                r = c.getresponse(); r.read()
                assert r.status == 200, r.status
            else:
                meta = "path " + base64.b64encode(path.encode()).decode()
                c.request("POST", "/api/tus", b"", {**auth, "Tus-Resumable": "1.0.0",
                          "Upload-Length": str(size), "Upload-Metadata": meta})
                r = c.getresponse(); r.read()
                assert r.status == 201, r.status
                at = r.getheader("Location")
                digest = base64.b64encode(hashlib.sha1(body).digest()).decode()
                c.request("PATCH", at, body, {**auth, "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                          "Content-Type": "application/offset+octet-stream",
                          "Upload-Checksum": "sha1 " + digest})
                r = c.getresponse(); r.read()
                assert r.status == 204, r.status

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        list(pool.map(worker, [range(k, n, 3) for k in range(3)]))
    took = time.monotonic() - start
    print(f"{n / took:.1f}")

main()
