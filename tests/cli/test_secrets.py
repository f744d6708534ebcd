"""Provider keys are never stored, logged or exported, even when an upstream echoes them back.

An upstream on 127.0.0.1 answers every request with the key it was sent:
in a JSON error, in a plain-text 500, in a 200 body that is not JSON. The
database file (and its WAL), the exports, the terminal and the config
printout are then searched for the key.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from axtui import locations
from axtui.cli import main
from axtui.redaction import forget_all

SECRET = "SECRET123"
OPENAI_KEY = f"sk-{SECRET}openaiopenai"
PLAIN_KEY = f"plain{SECRET}value"  # no key shape: found only because ax knows it


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        sent = self.headers.get("authorization") or self.headers.get("x-api-key") or ""
        mode = self.path.split("/")[1]
        if mode == "json":
            status, body = 400, json.dumps({"error": {"message": f"Incorrect API key provided: {sent}"}})
        elif mode == "text":
            status, body = 500, f"internal error for {sent}"
        else:
            status, body = 200, f"not json {sent}"
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", "application/json" if mode == "json" else "text/plain")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def leaky_fleet(ax_home: Path, echo_upstream: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("PLAIN_KEY", PLAIN_KEY)
    blocks = []
    for mode in ("json", "text", "garbage"):
        for env in ("OPENAI_API_KEY", "PLAIN_KEY"):
            name = f"{mode}-{env.split('_')[0].lower()}"
            blocks.append(
                f'[[providers]]\nname = "{name}"\nkind = "openai"\napi_key_env = "{env}"\n'
                f'base_url = "{echo_upstream}/{mode}/v1"\nmodels = ["m-{name}"]\n'
            )
    blocks.append('[[providers]]\nname = "sim"\nkind = "sim"\nprofile = "fast"\nmodels = ["gpt-4o-mini"]\n')
    locations.config_path().write_text("\n".join(blocks))
    forget_all()  # what ax scrubs, it must learn by itself
    yield
    forget_all()


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout + result.stderr


def test_echoed_provider_keys_reach_no_record_export_or_terminal(leaky_fleet: None, tmp_path: Path) -> None:
    printed = []
    for mode in ("json", "text", "garbage"):
        for who in ("openai", "plain"):
            for extra in ([], ["--stream"], ["--json"]):
                code, output = _run("call", "hello", "--model", f"m-{mode}-{who}", *extra)
                assert code == 1, output  # the upstream failed, and said so
                printed.append(output)
    code, output = _run("call", "hello", "--model", "gpt-4o-mini", "--json")
    assert code == 0, output
    printed.append(output)
    for fmt in ("csv", "json"):
        code, output = _run("monitor", "export", "--format", fmt, "-o", str(tmp_path / f"calls.{fmt}"))
        assert code == 0, output
    printed += [_run("config", "show")[1], _run("config", "show", "--json")[1]]

    everything = "\n".join(printed)
    assert "provider 'json-openai' answered HTTP 400" in everything  # the errors were shown …
    assert SECRET not in everything  # … without the key
    for path in [*tmp_path.glob("calls.*"), *locations.db_path().parent.glob("ax.db*")]:
        assert SECRET.encode() not in path.read_bytes(), f"{path.name} holds a provider key"
    exported = (tmp_path / "calls.csv").read_text()
    assert exported.count("[redacted]") >= 6  # the failures are there, scrubbed


def test_gateway_keys_are_stored_hashed(ax_home: Path) -> None:
    code, output = _run("keys", "create", "--user", "alice", "--json")
    assert code == 0
    raw = json.loads(output[: output.rindex("}") + 1])["key"]
    secret_part = raw.split("_", 2)[2]  # axk_<id>_<secret>; the secret may itself contain "_"
    assert len(secret_part) >= 20
    for path in locations.db_path().parent.glob("ax.db*"):
        data = path.read_bytes()
        assert raw.encode() not in data and secret_part.encode() not in data


def test_config_show_masks_credential_headers(ax_home: Path) -> None:
    locations.config_path().write_text(
        '[[providers]]\nname = "openrouter"\nkind = "openai"\nbase_url = "https://openrouter.ai/api/v1"\n'
        'models = ["m"]\n'
        f'headers = {{ Authorization = "Bearer {OPENAI_KEY}", "X-Title" = "my app", "x-session-token" = "{PLAIN_KEY}" }}\n'
    )
    for args in (["config", "show"], ["config", "show", "--json"]):
        code, output = _run(*args)
        assert code == 0, output
        assert SECRET not in output and "my app" in output
