"""Request bodies are bounded and slow clients are cut off (issue 7, items 11, 13, 14),
checked on a real server over raw sockets."""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest

from dioptra.config import Settings, resolves_to_loopback

MIB = 1 << 20


def connect(server, timeout: float = 20.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(head.split(b" ")[1]), json.loads(body[:length])


def send_quietly(sock: socket.socket, data: bytes) -> bool:
    """Send unless the server already stopped listening; False once it did."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *headers, "", ""]
    return "\r\n".join(lines).encode()


@pytest.fixture
def limited(start_server):
    return start_server(env={"DIOPTRA_MAX_UPLOAD_BYTES": str(10 * MIB),
                             "DIOPTRA_REQUEST_TIMEOUT": "1"})


def test_bodies_are_bounded_and_slow_clients_cut_off(limited) -> None:
    # One server for both (a server start costs seconds).
    bodies_are_refused_by_length_and_while_streaming(limited)
    idle_half_sent_requests_are_cut_off(limited)
    limited.stop(signal.SIGKILL)  # no workers, an external MLflow: nothing to stop gently


def bodies_are_refused_by_length_and_while_streaming(limited) -> None:
    cases = [
        ("/api/v0/experiment/", "application/json", "DIOPTRA_MAX_JSON_BYTES"),
        ("/api/v0/worker/jobs/x/log", "text/plain", "DIOPTRA_MAX_LOG_CHUNK_BYTES"),
        ("/api/v0/job/", "multipart/form-data; boundary=b", "DIOPTRA_MAX_UPLOAD_BYTES"),
    ]
    for path, content_type, setting in cases:
        # A declared 300 MB body: answered at once, nothing read.
        with connect(limited) as sock:
            sock.sendall(head("POST", path, f"Content-Type: {content_type}",
                              f"Content-Length: {300 * MIB}"))
            status, body = read_response(sock)
        assert status == 413 and setting in body["message"], body
        # Chunked, no length: counted while it streams, refused long before its end (the
        # end never comes: a server that read everything would never answer).
        with connect(limited) as sock:
            sock.sendall(head("POST", path, f"Content-Type: {content_type}",
                              "Transfer-Encoding: chunked"))
            part = (b'--b\r\nContent-Disposition: form-data; name="workflow"; '
                    b'filename="w.tar"\r\nContent-Type: application/x-tar\r\n\r\n')
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            chunk = b"%x\r\n%s\r\n" % (MIB, b"a" * MIB)
            for _ in range(16):
                if not send_quietly(sock, chunk):
                    break
            status, body = read_response(sock)
        assert status == 413 and setting in body["message"], body
    # What fits still goes through.
    with connect(limited) as sock:
        payload = json.dumps({"name": f"limits-{time.time_ns()}"}).encode()
        sock.sendall(head("POST", "/api/v0/experiment/", "Content-Type: application/json",
                          f"Content-Length: {len(payload)}") + payload)
        assert read_response(sock)[0] == 200


def idle_half_sent_requests_are_cut_off(limited) -> None:
    started = time.monotonic()
    # A head that never ends (one more header every half second, never the blank line).
    with connect(limited) as head_only:
        head_only.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n")
        closed = False
        for i in range(40):
            if not send_quietly(head_only, f"X-Slow-{i}: 1\r\n".encode()):
                closed = True
                break
            head_only.settimeout(0.5)
            try:
                if head_only.recv(1024) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
        assert closed, "the server kept a never-ending request head open for 20 s"
    # A body that stops half way: 408 with the setting's name.
    with connect(limited) as body_only:
        body_only.sendall(head("POST", "/api/v0/experiment/", "Content-Type: application/json",
                               "Content-Length: 100") + b'{"name": ')
        status, body = read_response(body_only)
        assert status == 408 and "DIOPTRA_REQUEST_TIMEOUT" in body["message"], body
    assert time.monotonic() - started < 20
    # Many held connections cost nothing once they are cut off: the server still answers.
    held = [connect(limited) for _ in range(50)]
    for sock in held:
        sock.sendall(b"GET /health HTTP/1.1\r\n")
    time.sleep(2.5)
    for sock in held:
        sock.settimeout(5)
        assert sock.recv(1024) == b""
        sock.close()


def test_loopback_is_decided_by_the_address() -> None:
    assert not resolves_to_loopback("127.attacker.example")
    assert not Settings(host="127.attacker.example").is_loopback
    assert not resolves_to_loopback("0.0.0.0")
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1"):
        assert resolves_to_loopback(host), host
