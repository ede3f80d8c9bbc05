"""Authentication and TLS end to end: the real binary, pyarrow.flight and fletch.Client.

Certificates are made with the openssl command line for each module: a CA, a server certificate for
127.0.0.1 and a client certificate for "carol".
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from conftest import free_port, server_env

import fletch

CALL_TOKEN = "call-token-0123456789"
ADMIN_TOKEN = "admin-token-0123456789"
TOKENS = f"# name token scopes\nalice {CALL_TOKEN}\nroot {ADMIN_TOKEN} admin\n"

SOURCE = "from fletch import udf\n\n@udf\ndef twice(x: int) -> int:\n    return 2 * x\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail(
            "these tests make certificates with the openssl command; install it (apt install openssl)"
        )
    d = tmp_path_factory.mktemp("pki")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=fletch test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    )
    for name, cn, ext in (
        ("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("client", "carol", "extendedKeyUsage=clientAuth\n"),
    ):
        (d / f"{name}.ext").write_text(ext)
        run(
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            f"/CN={cn}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
        )
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            f"{name}.ext",
            "-out",
            f"{name}.pem",
        )
    return {n: d / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(TOKENS)
    path.chmod(0o600)
    return path


def echo(client: flight.FlightClient, options: flight.FlightCallOptions | None = None) -> pa.Table:
    writer, reader = client.do_exchange(flight.FlightDescriptor.for_path("echo_int64"), options=options)
    batch = pa.record_batch([pa.array([1, 2, 3], pa.int64())], names=["x"])
    with writer:
        writer.begin(batch.schema)
        writer.write_batch(batch)
        writer.done_writing()
        return reader.read_all()


def run_fletch(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=server_env(),
        stdin=subprocess.DEVNULL,
    )


def test_tokens_over_tls(start_server: Callable[..., Any], pki: dict[str, Path], tokens_file: Path) -> None:
    ca = pki["ca.pem"].read_bytes()
    server = start_server(
        "--auth-tokens",
        str(tokens_file),
        "--tls-cert",
        str(pki["server.pem"]),
        "--tls-key",
        str(pki["server.key"]),
        "--live-registration",
        tls_root_certs=ca,
    )
    client = server.client()

    with pytest.raises(flight.FlightUnauthenticatedError, match="needs credentials"):
        list(client.list_flights())
    with pytest.raises(flight.FlightUnauthenticatedError, match="not valid"):
        echo(client, flight.FlightCallOptions(headers=[(b"authorization", b"Bearer not-a-token-0123456789")]))
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.authenticate_basic_token("alice", ADMIN_TOKEN)  # root's token under alice's name

    header = client.authenticate_basic_token("alice", CALL_TOKEN)
    assert header == (b"authorization", f"Bearer {CALL_TOKEN}".encode())
    alice = flight.FlightCallOptions(headers=[header])
    assert echo(client, alice).column(0).to_pylist() == [1, 2, 3]
    register = flight.Action("register", json.dumps({"module": "extra", "source": SOURCE}).encode())
    with pytest.raises(flight.FlightUnauthorizedError, match="needs a token with the admin scope"):
        list(client.do_action(register, options=alice))

    root = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {ADMIN_TOKEN}".encode())])
    registered = json.loads(next(iter(client.do_action(register, options=root))).body.to_pybytes())
    assert [f["name"] for f in registered] == ["twice"]
    with fletch.Client(server.location, token=CALL_TOKEN, tls_root_certs=ca) as fc:
        assert fc.call("twice", [1, 2]).to_pylist() == [2, 4]
    stranger = fletch.Client(server.location, token="not-a-token-0123456789", tls_root_certs=ca)
    with stranger, pytest.raises(fletch.Unauthenticated):
        stranger.call("echo_int64", [1])

    # A plaintext client cannot talk to the TLS server at all.
    plain = flight.FlightClient(server.location.replace("grpc+tls", "grpc"))
    with pytest.raises(flight.FlightUnavailableError):
        list(plain.list_flights(options=alice))
    plain.close()

    log = server.stderr_text()
    for expected in ("admin action", "caller=root", "code=Unauthenticated", "peer=127.0.0.1:"):
        assert expected in log, log
    for secret in (CALL_TOKEN, ADMIN_TOKEN):
        assert secret not in log, "a token reached the log"


def test_mutual_tls(start_server: Callable[..., Any], pki: dict[str, Path]) -> None:
    ca = pki["ca.pem"].read_bytes()
    server = start_server(
        "--tls-cert",
        str(pki["server.pem"]),
        "--tls-key",
        str(pki["server.key"]),
        "--tls-client-ca",
        str(pki["ca.pem"]),
        "--live-registration",
        tls_root_certs=ca,
        client_cert=(pki["client.pem"].read_bytes(), pki["client.key"].read_bytes()),
    )
    with fletch.Client(
        server.location,
        tls_root_certs=ca,
        tls_cert_chain=pki["client.pem"].read_bytes(),
        tls_private_key=pki["client.key"].read_bytes(),
    ) as carol:
        assert carol.call("echo_int64", [5, 6]).to_pylist() == [5, 6]
    certified = flight.FlightClient(
        server.location,
        tls_root_certs=ca,
        cert_chain=pki["client.pem"].read_bytes(),
        private_key=pki["client.key"].read_bytes(),
    )
    with pytest.raises(flight.FlightUnauthorizedError, match="admin scope"):  # a certificate has scope call
        list(certified.do_action(flight.Action("reload", b"")))
    certified.close()
    anonymous = fletch.Client(server.location, tls_root_certs=ca)
    with anonymous, pytest.raises(fletch.Unavailable):  # the TLS handshake fails without a client certificate
        anonymous.call("echo_int64", [1])
    assert "caller=carol" in server.stderr_text()


def test_sighup_reloads_tokens(start_server: Callable[..., Any], tokens_file: Path) -> None:
    server = start_server("--auth-tokens", str(tokens_file))
    old = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {CALL_TOKEN}".encode())])
    new_token = "fresh-token-0123456789"
    new = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {new_token}".encode())])
    client = server.client()
    assert len(list(client.list_flights(options=old))) > 0

    tokens_file.write_text(f"bob {new_token}\n")
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "auth tokens reloaded" not in server.stderr_text():
        assert time.monotonic() < deadline, server.describe()
        time.sleep(0.05)
    with pytest.raises(flight.FlightUnauthenticatedError):
        list(client.list_flights(options=old))
    assert len(list(client.list_flights(options=new))) > 0

    tokens_file.write_text("broken\n")  # a bad edit keeps the tokens that work
    server.process.send_signal(signal.SIGHUP)
    while "auth tokens not reloaded" not in server.stderr_text():
        assert time.monotonic() < deadline, server.describe()
        time.sleep(0.05)
    assert len(list(client.list_flights(options=new))) > 0


def test_health_stays_open(start_server: Callable[..., Any], fletch_bin: Path, tokens_file: Path) -> None:
    server = start_server("--auth-tokens", str(tokens_file))
    address = server.location.removeprefix("grpc://")
    result = run_fletch(fletch_bin, "health", "--address", address)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("args", "mention"),
    [
        (["--live-registration"], "needs --auth-tokens or --tls-client-ca"),
        (["--tls-cert", "x.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-client-ca", "ca.pem"], "--tls-client-ca needs --tls-cert and --tls-key"),
        (["--auth-tokens", "/nonexistent/tokens"], "--auth-tokens"),
    ],
)
def test_refused_configurations(fletch_bin: Path, args: list[str], mention: str) -> None:
    result = run_fletch(fletch_bin, "serve", "--listen", f"0.0.0.0:{free_port()}", *args)
    assert result.returncode == 2, result.stderr
    assert mention in result.stderr, result.stderr


def test_public_address_without_auth_warns(start_server: Callable[..., Any]) -> None:
    server = start_server(listen=f"0.0.0.0:{free_port()}")
    assert "non-loopback address without authentication" in server.stderr_text()
