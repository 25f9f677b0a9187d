"""Exposure: with the servers started as `make run` starts them, Rasa, the action
server and the web app listen on loopback only, and Rasa's HTTP API answers
only to its token. Reads the kernel's socket table (`ss`); every request goes
to 127.0.0.1."""
from __future__ import annotations

import shutil
import subprocess

import pytest
import requests

pytestmark = pytest.mark.e2e


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on `port` (IPv4 and IPv6)."""
    if not shutil.which("ss"):
        pytest.fail("`ss` (iproute2) is missing: make setup installs it")
    return addresses_on(subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout, port)


def addresses_on(ss_output: str, port: int) -> set[str]:
    found = set()
    for line in ss_output.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        address, _, listen_port = fields[3].rpartition(":")
        if listen_port == str(port):
            found.add(address.strip("[]").split("%")[0])
    return found


@pytest.mark.parametrize("server", ["rasa", "action server", "web app"])
def test_servers_listen_on_loopback_only(stack, server):
    port = {"rasa": stack.rasa_port, "action server": stack.actions_port, "web app": stack.web_port}[server]
    addresses = listening_addresses(port)
    assert addresses, f"nothing listens on {port}: the {server} is not running"
    assert addresses == {"127.0.0.1"}, f"the {server} listens on {sorted(addresses)} (port {port})"


def test_the_socket_table_reading_sees_every_interface():
    table = """LISTEN 0 100 127.0.0.1:5005 0.0.0.0:*
LISTEN 0 128 0.0.0.0:5055 0.0.0.0:*
LISTEN 0 128 [::]:5055 [::]:*
LISTEN 0 128 *:8000 *:*
LISTEN 0 128 [::1]:8001 [::]:*
LISTEN 0 128 [fe80::1%eth0]:8002 [::]:*
LISTEN 0 100 127.0.0.1:50055 0.0.0.0:*
"""
    assert addresses_on(table, 5005) == {"127.0.0.1"}
    assert addresses_on(table, 5055) == {"0.0.0.0", "::"}
    assert addresses_on(table, 8000) == {"*"}
    assert addresses_on(table, 8001) == {"::1"}
    assert addresses_on(table, 8002) == {"fe80::1"}
    assert addresses_on(table, 55) == set()


API_CALLS = [
    ("GET", "/status", None),
    ("GET", "/conversations/exposure-check/tracker", None),
    ("POST", "/conversations/exposure-check/tracker/events", {"event": "slot", "name": "hukou_ordos", "value": True}),
    ("POST", "/model/parse", {"text": "育儿假有几天"}),
]


@pytest.mark.parametrize("method,path,body", API_CALLS, ids=[f"{m} {p}" for m, p, _ in API_CALLS])
@pytest.mark.parametrize("token", [None, "", "wrong-token"], ids=["no token", "empty token", "wrong token"])
def test_rasa_http_api_refuses_a_missing_or_wrong_token(stack, method, path, body, token):
    params = {} if token is None else {"token": token}
    resp = requests.request(method, f"{stack.rasa_url}{path}", params=params, json=body, timeout=30)
    assert resp.status_code in (401, 403), (resp.status_code, resp.text[:200])


def test_rasa_http_api_accepts_the_right_token(stack):
    resp = requests.get(f"{stack.rasa_url}/status", params={"token": stack.env["RASA_TOKEN"]}, timeout=30)
    assert resp.status_code == 200 and resp.json().get("model_file")
    assert stack.tracker("exposure-check")["sender_id"] == "exposure-check"
