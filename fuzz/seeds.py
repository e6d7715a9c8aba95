#!/usr/bin/env python3
"""Writes fuzz/seeds/*.http: the requests of the captures a real v1.36.2 kube-apiserver answered
(../shared/upstream/responses/*.http.txt, curl -v transcripts), in the harness's text form.

    python3 fuzz/seeds.py /work/shared/upstream/responses fuzz/seeds
"""
import os
import re
import sys

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
for name in sorted(os.listdir(src)):
    if not name.endswith(".http.txt"):
        continue
    text = open(os.path.join(src, name), "rb").read()
    m = re.search(rb"### REQUEST[^\n]*\n(.*?)\n### RESPONSE", text, re.S)
    if not m:
        continue
    req = m.group(1)
    head, _, body = req.partition(b"\n\n")
    lines = [l for l in head.split(b"\n") if l.strip()]
    # curl -v prints an empty line after the headers, then the body it sent.
    length = 0
    for l in lines[1:]:
        k, _, v = l.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    body = body.lstrip(b"\n")[:length]
    headers = [l for l in lines[1:] if not l.lower().startswith((b"host:", b"content-length:"))]
    if b"unauthenticated" in name.encode() or b"invalid-bearer" in name.encode():
        # Captured without a client certificate.
        headers.append(b"x-fuzz-user: -")
    out = b"\n".join([lines[0]] + headers) + b"\n\n" + body
    open(os.path.join(dst, name.replace(".http.txt", ".http")), "wb").write(out)
