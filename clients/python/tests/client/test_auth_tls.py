"""Token, TLS and the ListFlights fallback, against a pyarrow Flight server standing in for fletch.

fletch serves neither authentication nor TLS yet and always has the list action; the client is ready for all
three, and these tests hold it to that.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

import fletch

from .conftest import TOKEN, CountingMiddleware, StandIn


def test_token_is_sent_on_every_call(stand_in: StandIn, counting: CountingMiddleware) -> None:
    with fletch.Client(f"127.0.0.1:{stand_in.port}", token=TOKEN, middleware=[counting]) as c:
        assert [i.name for i in c.list()] == ["echo"]
        assert c.describe("echo", refresh=True).doc == "returns x"
        assert c.call("echo", [1, 2]).to_pylist() == [1, 2]
        assert [b.num_rows for b in c.call_stream("echo", [pa.record_batch({"x": [1]})])] == [1]
    calls = sum(counting.calls.values())
    assert calls == 4
    assert stand_in.tokens.seen == [f"Bearer {TOKEN}"] * calls


def test_missing_token(stand_in: StandIn) -> None:
    with fletch.Client(f"127.0.0.1:{stand_in.port}") as c:
        with pytest.raises(fletch.Unauthenticated):
            c.describe("echo")
        with pytest.raises(fletch.Unauthenticated):
            c.call_stream("echo", [])


def test_extra_headers(stand_in: StandIn) -> None:
    with fletch.Client(f"127.0.0.1:{stand_in.port}", headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        assert c.describe("echo").name == "echo"


def test_list_falls_back_to_list_flights() -> None:
    server = StandIn("grpc://127.0.0.1:0", list_action=False)
    try:
        with fletch.Client(f"127.0.0.1:{server.port}", token=TOKEN) as c:
            (info,) = c.list()
            assert info.name == "echo"
            assert info.params == (fletch.ParamInfo("x", pa.int64(), "int64", False),)
            assert info.version == "0123456789abcdef"
    finally:
        server.shutdown()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[bytes, bytes]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *(
                openssl,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ),
            *("-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert.read_bytes(), key.read_bytes()


def test_tls(certificate: tuple[bytes, bytes]) -> None:
    cert, key = certificate
    server = StandIn("grpc+tls://127.0.0.1:0", tls_certificates=[(cert, key)])
    try:
        with fletch.Client(f"grpc+tls://127.0.0.1:{server.port}", token=TOKEN, tls_root_certs=cert) as c:
            assert c.call("echo", [7]).to_pylist() == [7]
        # host:port with tls_root_certs means TLS.
        with fletch.Client(f"localhost:{server.port}", token=TOKEN, tls_root_certs=cert.decode()) as c:
            assert c.location.startswith("grpc+tls://")
            assert c.call("echo", [8]).to_pylist() == [8]
        # Plain gRPC to a TLS server fails as unavailable.
        plain = fletch.Client(f"grpc://127.0.0.1:{server.port}", token=TOKEN, timeout=5)
        with plain, pytest.raises(fletch.Unavailable):
            plain.list()
    finally:
        server.shutdown()
