#!/usr/bin/env python3
"""Print a broker's ApiVersions (v4) answer: version ranges of the share-group APIs and the finalized features.

    python3 scripts/kafka.d/apiversions.py 127.0.0.1:19092 [--all]

(v4, not v3: a v3 answer lists only metadata.version among the supported features, KIP-1022.)
Used to establish the facts in docs/real-kafka.md (which RPC versions each Kafka release serves, and which
share.version a fresh cluster finalizes). Standard library only; one request, 5 s socket timeout.
"""
import socket
import struct
import sys

NAMES = {
    3: "Metadata", 10: "FindCoordinator", 18: "ApiVersions", 19: "CreateTopics", 32: "DescribeConfigs",
    44: "IncrementalAlterConfigs", 76: "ShareGroupHeartbeat", 77: "ShareGroupDescribe", 78: "ShareFetch",
    79: "ShareAcknowledge", 83: "InitializeShareGroupState", 84: "ReadShareGroupState",
    85: "WriteShareGroupState", 86: "DeleteShareGroupState", 87: "ReadShareGroupStateSummary",
    90: "DescribeShareGroupOffsets", 91: "AlterShareGroupOffsets", 92: "DeleteShareGroupOffsets",
}
SHARE_KEYS = {76, 77, 78, 79, 90, 91, 92}


def uvarint(buf, pos):
    shift = value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def compact_str(buf, pos):
    n, pos = uvarint(buf, pos)
    if n == 0:
        return None, pos
    return buf[pos:pos + n - 1].decode(), pos + n - 1


def skip_tags(buf, pos):
    n, pos = uvarint(buf, pos)
    for _ in range(n):
        _, pos = uvarint(buf, pos)
        size, pos = uvarint(buf, pos)
        pos += size
    return pos


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        out += chunk
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    host, port = sys.argv[1].rsplit(":", 1)
    show_all = "--all" in sys.argv[2:]
    client_id = b"apiversions-probe"
    header = struct.pack(">hhih", 18, 4, 1, len(client_id)) + client_id + b"\x00"
    body = b"\x06probe" + b"\x021" + b"\x00"  # compact strings "probe", "1"; no tagged fields
    req = header + body
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(struct.pack(">i", len(req)) + req)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        buf = recv_exact(s, size)
    pos = 4  # correlation id (ApiVersions responses use header v0)
    err = struct.unpack_from(">h", buf, pos)[0]
    pos += 2
    if err:
        sys.exit(f"ApiVersions error code {err}")
    n, pos = uvarint(buf, pos)
    apis = []
    for _ in range(n - 1):
        key, lo, hi = struct.unpack_from(">hhh", buf, pos)
        pos = skip_tags(buf, pos + 6)
        apis.append((key, lo, hi))
    pos += 4  # throttle time
    finalized = {}
    supported = {}
    ntags, pos = uvarint(buf, pos)
    for _ in range(ntags):
        tag, pos = uvarint(buf, pos)
        size, pos = uvarint(buf, pos)
        end = pos + size
        if tag in (0, 2):
            cnt, p = uvarint(buf, pos)
            for _ in range(cnt - 1):
                name, p = compact_str(buf, p)
                a, b = struct.unpack_from(">hh", buf, p)
                p = skip_tags(buf, p + 4)
                if tag == 0:
                    supported[name] = (a, b)      # min_version, max_version
                else:
                    finalized[name] = (b, a)      # min_version_level, max_version_level
        pos = end
    for key, lo, hi in apis:
        if show_all or key in SHARE_KEYS:
            print(f"api {key:3d} {NAMES.get(key, '?'):28s} v{lo}-v{hi}")
    for name in sorted(finalized):
        lo, hi = finalized[name]
        print(f"finalized {name}={hi}" + (f" (min {lo})" if lo != hi else ""))
    for name in sorted(supported):
        lo, hi = supported[name]
        print(f"supported {name} {lo}..{hi}")


if __name__ == "__main__":
    main()
