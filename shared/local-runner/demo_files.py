#!/usr/bin/env python3
"""Files for `make demo`, made here rather than checked in, and the browser's upload.

    demo_files.py png WIDTH HEIGHT OUT     a real PNG (a colour gradient)
    demo_files.py pdf OUT TEXT [TEXT ...]  a real PDF, one page per TEXT
    demo_files.py upload PATH < TICKET     POSTs PATH with the presigned form of the ticket that
                                           `POST /orgs/{orgId}/files` answered; prints the status
"""

import json
import struct
import sys
import time
import urllib.request
import zlib


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 160)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def pdf(pages: list[str]) -> bytes:
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 18 Tf 72 720 Td ({escaped}) Tj ET"
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {len(objects)} 0 R >>")
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def upload(path: str, ticket: dict) -> int:
    boundary = f"----demo{time.time_ns()}"
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in ticket["upload"]["fields"].items()
    )
    with open(path, "rb") as f:
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="upload"\r\n\r\n'.encode() + f.read()
    body += f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(ticket["upload"]["url"], data=body, method="POST")
    req.add_header("content-type", f"multipart/form-data; boundary={boundary}")
    with urllib.request.urlopen(req, timeout=30) as res:
        return res.status


def main() -> None:
    what = sys.argv[1]
    if what == "png":
        open(sys.argv[4], "wb").write(png(int(sys.argv[2]), int(sys.argv[3])))
    elif what == "pdf":
        open(sys.argv[2], "wb").write(pdf(sys.argv[3:]))
    elif what == "upload":
        print(upload(sys.argv[2], json.load(sys.stdin)))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
