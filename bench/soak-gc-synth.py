"""Writes a synthetic registry:2 filesystem layout for measuring the garbage
collector's memory (docs/reliability.md#soak): N live images (tagged), G
deleted ones (blobs and layer links left, revision and tags gone), spread
over R repositories. Each image: a config, one layer, a manifest.

usage: soak-gc-synth.py ROOT N G R     # e.g. /var/tmp/gcreg 40000 20000 16
"""
import hashlib, json, os, sys
root, n, g, r = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
v2 = os.path.join(root, "docker/registry/v2")
def put(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f: f.write(data)
def blob(data):
    h = hashlib.sha256(data).hexdigest()
    put(f"{v2}/blobs/sha256/{h[:2]}/{h}/data", data)
    return h
for i in range(n + g):
    repo = f"{v2}/repositories/synth/r{i % r}"
    cfg = blob(json.dumps({"architecture": "amd64", "os": "linux", "i": i}).encode())
    layer = blob(f"layer {i}".encode() * 8)
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cfg, "size": 1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + layer, "size": 1}]}).encode()
    md = blob(m)
    for d in (cfg, layer):
        put(f"{repo}/_layers/sha256/{d}/link", f"sha256:{d}".encode())
    if i < n:
        put(f"{repo}/_manifests/revisions/sha256/{md}/link", f"sha256:{md}".encode())
        put(f"{repo}/_manifests/tags/t{i}/current/link", f"sha256:{md}".encode())
        put(f"{repo}/_manifests/tags/t{i}/index/sha256/{md}/link", f"sha256:{md}".encode())
