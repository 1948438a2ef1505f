"""The `ragline` CLI (clients/python, ragline_client.cli) as a user runs it: the installed
console script as a subprocess against the suite's stack. Ingest of a folder with its summary
table (and again: unchanged, not copied), the live progress bar seen in a pseudo-terminal,
search as a table and as JSON, streaming chat with citations and a continued conversation,
every list command, key management with the secret shown once, usage, exit codes by error
class (401, 403, 404, 400, nothing listening, usage errors) on REST and gRPC, --help on
every command, and the README's quick start."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragline_stack.stack import Stack, free_port
from tests.support.auth import DEV_KEY, DEV_TENANT

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RAGLINE = Path(sys.executable).parent / "ragline"  # the console script make setup installs
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
COMMANDS = [
    [],
    ["ingest"],
    ["search"],
    ["chat"],
    ["usage"],
    ["health"],
    ["collections"],
    ["collections", "list"],
    ["collections", "get"],
    ["collections", "delete"],
    ["documents"],
    ["documents", "list"],
    ["documents", "get"],
    ["documents", "delete"],
    ["jobs"],
    ["jobs", "get"],
    ["jobs", "watch"],
    ["keys"],
    ["keys", "create"],
    ["keys", "list"],
    ["keys", "get"],
    ["keys", "rotate"],
    ["keys", "revoke"],
]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _env(stack: Stack | None, key: str | None = DEV_KEY, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGLINE_")}
    # Piped output at a known width; no colour codes in what the tests read.
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb")
    if stack is not None:
        env["RAGLINE_URL"] = stack.cfg.base_url
    if key is not None:
        env["RAGLINE_API_KEY"] = key
    env.update(extra)
    return env


def ragline(
    stack: Stack | None, *args: str, key: str | None = DEV_KEY, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RAGLINE), *args],
        capture_output=True,
        text=True,
        env=_env(stack, key, **env),
        timeout=180,
        check=False,
    )


def ok(stack: Stack, *args: str, **kw: str) -> str:
    out = ragline(stack, *args, **kw)
    assert out.returncode == 0, (args, out.stdout, out.stderr)
    return out.stdout


def ok_json(stack: Stack, *args: str, **kw: str) -> object:
    return json.loads(ok(stack, *args, "--json", **kw))


def _folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "envoy.txt").write_text("Envoy transcodes JSON requests to gRPC and back.")
    (root / "orchids.md").write_text("# Orchids\n\nWater moth orchids once a week.")
    (root / "sub" / "quokka.html").write_text("<html><body><p>Quokkas smile.</p></body></html>")
    (root / "skip.bin").write_bytes(b"\x00\x01")  # matches no pattern
    return root


@pytest.fixture(scope="module")
def notes(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A collection ingested by the CLI from a folder (two text files, one HTML upload)."""
    name = _name("cli")
    folder = _folder(tmp_path_factory.mktemp("notes"))
    out = ragline(stack, "ingest", str(folder), "--collection", name)
    assert out.returncode == 0, out.stdout + out.stderr
    # The summary table: one row per job and the totals, 3 files ingested.
    assert f"Ingest into {name}: 3 files" in out.stdout
    total = next(line for line in out.stdout.splitlines() if "total" in line)
    assert re.findall(r"\d+", total) == ["3", "3", "0", "0", "3"], out.stdout
    assert "Failed" not in out.stdout and out.stderr == ""
    yield name, folder
    ragline(stack, "collections", "delete", name, "--yes")


def test_help_on_every_command():
    for command in COMMANDS:
        out = ragline(None, *command, "--help", key=None)
        assert out.returncode == 0, (command, out.stderr)
        assert f"Usage: ragline {' '.join(command)}".strip() in out.stdout, command
    assert "RAGLINE_URL" in ragline(None, "--help", key=None).stdout
    version = ragline(None, "--version", key=None)
    assert version.returncode == 0 and version.stdout.startswith("ragline 1.")


def test_usage_errors_exit_2(stack):
    missing = ragline(stack, "search", "no collection given")
    assert missing.returncode == 2 and "--collection" in missing.stderr
    assert ragline(stack, "usage", "--by", "week").returncode == 2
    assert ragline(stack, "search", "x", "-c", "c", "--mode", "fuzzy").returncode == 2
    assert ragline(stack, "search", "x", "-c", "c", "--filter", "no-equals").returncode == 2
    # Deleting needs --yes when nobody is at a terminal to confirm.
    unconfirmed = ragline(stack, "collections", "delete", "anything")
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    assert ragline(stack, "nosuchcommand").returncode == 2


def test_ingest_again_updates_instead_of_copying(stack, notes):
    name, folder = notes
    # Again over native gRPC (batch, upload and watch): the same documents, unchanged.
    again = ok_json(stack, "--grpc", "ingest", str(folder), "-c", name)
    assert isinstance(again, dict)
    assert again["files"] == 3 and again["documents_unchanged"] == 3
    assert again["documents_failed"] == 0 and again["failures"] == []
    job_ids = [j["job_id"] for j in again["jobs"]]
    assert len(job_ids) == 2  # one batch of text files, one upload
    collection = ok_json(stack, "collections", "get", name)
    assert isinstance(collection, dict) and collection["document_count"] == 3
    # jobs get / watch on a finished job.
    job = ok_json(stack, "jobs", "get", job_ids[0])
    assert isinstance(job, dict) and job["state"] == "JOB_STATE_SUCCEEDED"
    watched = ok(stack, "jobs", "watch", job_ids[0], "--json").splitlines()
    assert json.loads(watched[-1])["state"] == "JOB_STATE_SUCCEEDED"
    assert "succeeded" in ok(stack, "jobs", "get", job_ids[0])


def test_ingest_reports_failed_files_and_exits_8(stack, tmp_path):
    name = _name("cli-fail")
    (tmp_path / "good.txt").write_text("Capybaras are calm rodents.")
    (tmp_path / "blank.txt").write_text("   \n")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\xfa not utf-8")
    out = ragline(stack, "ingest", str(tmp_path), "-c", name)
    assert out.returncode == 8, out.stdout + out.stderr
    failed = out.stdout.split("Failed", 1)[1]
    assert "blank.txt" in failed and "EMPTY_CONTENT" in failed
    assert "bad.txt" in failed and "BAD_FILE_ENCODING" in failed
    assert ok_json(stack, "collections", "get", name)["document_count"] == 1  # type: ignore[index]
    ok(stack, "collections", "delete", name, "--yes")


def _run_in_pty(stack: Stack, *args: str) -> tuple[int, str]:
    """Runs the CLI with a pseudo-terminal as stdin/stdout/stderr; all it wrote, as is."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    env = _env(stack, TERM="xterm-256color")
    env.pop("COLUMNS")
    env.pop("NO_COLOR")
    proc = subprocess.Popen(
        [str(RAGLINE), *args], stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=180), b"".join(chunks).decode(errors="replace")


def test_progress_bar_in_a_terminal(stack, tmp_path):
    name = _name("cli-pty")
    for i in range(60):
        text = f"Document {i} is about topic {i} and the habits of animal number {i}."
        (tmp_path / f"d{i:02}.txt").write_text(text)
    # More documents than the server ingests before answering: the job runs on after the
    # reply and the bar follows its watch stream.
    code, screen = _run_in_pty(stack, "ingest", str(tmp_path), "-c", name)
    assert code == 0, screen
    # Rich's live display redraws its line in place on a terminal (carriage return, erase).
    assert "\r\x1b[2K" in screen
    frames = re.findall(
        r"(\d+)/60 documents (\d+) failed (\d+) chunks", ANSI.sub("", screen), flags=re.M
    )
    counts = [int(done) for done, _, _ in frames]
    # The bar started at 0 before the job had done anything, moved without going back and
    # ended at 60 with no failures and the chunks counted.
    assert counts[0] == 0 and counts[-1] == 60 and counts == sorted(counts), counts
    assert frames[-1][1] == "0" and int(frames[-1][2]) >= 60
    assert "ETA" in screen and f"ingest → {name}" in screen
    plain = ANSI.sub("", screen)
    assert f"Ingest into {name}: 60 files" in plain  # then the summary table
    job_id = re.search(r"│ ([0-9a-f]{32}) │ succeeded", plain)
    assert job_id is not None, plain
    # jobs watch draws the same bar (here for a finished job: its last state) and the job.
    code, screen = _run_in_pty(stack, "jobs", "watch", job_id.group(1))
    watched = ANSI.sub("", screen)
    assert code == 0 and "60/60 documents 0 failed 60 chunks" in watched, screen
    assert "succeeded" in watched and "Traceback" not in watched
    # Not on a terminal, the same command prints no bar (scripts read the table or JSON).
    quiet = ragline(stack, "ingest", str(tmp_path), "-c", name)
    assert quiet.returncode == 0 and "documents" not in quiet.stderr
    ok(stack, "collections", "delete", name, "--yes")


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_search_table_and_json(stack, notes, transport):
    name, _ = notes
    flags = ["--grpc"] if transport == "grpc" else []
    table = ok(stack, *flags, "search", "what do quokkas do?", "-c", name)
    first = next(line for line in table.splitlines() if line.startswith("│ 1 "))
    assert "sub/quokka.html" in first and "Quokkas smile." in first
    assert "hits (hybrid)" in table
    results = ok_json(stack, *flags, "search", "what do quokkas do?", "-c", name, "-n", "2")
    assert isinstance(results, dict) and len(results["hits"]) == 2
    top = results["hits"][0]
    assert top["text"] == "Quokkas smile." and top["document_id"] == "sub:quokka.html"
    assert top["metadata"] == {"filename": "quokka.html"}
    keyword = ok_json(stack, *flags, "search", "SQLite orchids", "-c", name, "--mode", "keyword")
    assert keyword["mode"] == "SEARCH_MODE_KEYWORD"  # type: ignore[index]
    assert keyword["hits"][0]["title"] == "orchids.md"  # type: ignore[index]
    filtered = ok_json(
        stack, *flags, "search", "anything", "-c", name, "--filter", "filename=envoy.txt"
    )
    assert [h["title"] for h in filtered["hits"]] == ["envoy.txt"]  # type: ignore[index]


def test_chat_streams_with_citations_and_continues(stack, notes):
    name, _ = notes
    out = ok(stack, "chat", "What do quokkas do?", "-c", name, "--model", "extractive")
    answer, _, rest = out.partition("\nSources\n")
    assert "Quokkas smile" in answer
    assert re.search(
        r"\[1\] sub/quokka\.html \(sub:quokka\.html, chunk 0\): “Quokkas smile\.”", rest
    )
    conversation = re.search(r"conversation: ([0-9a-f]+)", rest)
    assert conversation is not None, out
    # Continued over native gRPC: the same conversation, streamed the same way.
    follow = ok(
        stack,
        "--grpc",
        "chat",
        "And what does Envoy do?",
        "-c",
        name,
        "--model",
        "extractive",
        "--conversation",
        conversation.group(1),
    )
    assert "JSON" in follow and f"conversation: {conversation.group(1)}" in follow
    # The streamed text is the whole answer: the same as --no-stream's and --json's.
    plain = ok(
        stack, "chat", "What do quokkas do?", "-c", name, "--model", "extractive", "--no-stream"
    )
    assert plain.partition("\nSources\n")[0].strip() == answer.strip()
    whole = ok_json(stack, "chat", "What do quokkas do?", "-c", name, "--model", "extractive")
    assert isinstance(whole, dict) and whole["answer"].strip() == answer.strip()
    assert whole["citations"][0]["title"] == "sub/quokka.html"


def test_list_get_and_delete_commands(stack, notes):
    name, _ = notes
    listed = ok(stack, "collections", "list")
    assert name in listed and "embedding model" in listed
    collections = ok_json(stack, "collections", "list")
    assert isinstance(collections, list)
    mine = next(c for c in collections if c["name"] == name)
    assert mine["document_count"] == 3 and mine["chunk_count"] == 3
    assert len(ok_json(stack, "collections", "list", "--limit", "1")) == 1  # type: ignore[arg-type]
    docs = ok(stack, "documents", "list", "-c", name)
    assert "envoy.txt" in docs and "sub:quokka.html" in docs
    documents = ok_json(stack, "documents", "list", "-c", name)
    assert isinstance(documents, list)
    assert sorted(d["document_id"] for d in documents) == [
        "envoy.txt",
        "orchids.md",
        "sub:quokka.html",
    ]
    shown = ok(stack, "documents", "get", "envoy.txt", "-c", name)
    assert "Envoy transcodes JSON requests to gRPC and back." in shown
    # Health needs no key.
    health = ragline(stack, "health", key=None)
    assert health.returncode == 0 and "SERVING" in health.stdout and "retriever" in health.stdout


def test_document_delete(stack, tmp_path):
    name = _name("cli-del")
    (tmp_path / "a.txt").write_text("Alpacas hum.")
    (tmp_path / "b.txt").write_text("Bison roam.")
    # --no-wait submits and returns; the job is followed with jobs watch.
    submitted = ok_json(stack, "ingest", str(tmp_path), "-c", name, "--no-wait")
    [job] = submitted["jobs"]  # type: ignore[index]
    watched = ok(stack, "jobs", "watch", job["job_id"], "--json").splitlines()
    assert json.loads(watched[-1])["documents_done"] == 2
    gone = ok(stack, "documents", "delete", "a.txt", "-c", name, "--yes")
    assert "deleted document a.txt (1 chunks)" in gone
    assert ragline(stack, "documents", "get", "a.txt", "-c", name).returncode == 4
    deleted = ok_json(stack, "collections", "delete", name, "--yes")
    assert deleted == {"documents_deleted": 1}


def test_keys_secret_once_scopes_and_usage(stack):
    tenant = _name("cli-tenant")
    created = ragline(
        stack,
        "keys",
        "create",
        "--tenant",
        tenant,
        "--scope",
        "search",
        "--name",
        "cli",
        "--tier",
        "free",
    )
    assert created.returncode == 0, created.stderr
    secret = re.search(r"^key: (rl_live_\S+)$", created.stdout, flags=re.M)
    assert secret is not None and "only time the key is shown" in created.stderr
    key_id = next(
        line.split("│")[1].strip() for line in created.stdout.splitlines() if tenant in line
    )
    listed = ok_json(stack, "keys", "list", "--tenant", tenant)
    assert [k["key_id"] for k in listed] == [key_id]  # type: ignore[union-attr]
    assert secret.group(1) not in json.dumps(listed)  # lists never show a secret
    assert "active" in ok(stack, "keys", "get", key_id)
    # The new key works for its scope (its tenant has no such collection: 404 -> exit 4)
    # and is refused outside it (403 -> exit 3).
    assert ragline(stack, "search", "x", "-c", _name("c"), key=secret.group(1)).returncode == 4
    denied = ragline(stack, "chat", "hello", key=secret.group(1))
    assert denied.returncode == 3 and "permission denied" in denied.stderr
    rotated = ok(stack, "keys", "rotate", key_id, "--grace", "30")
    new_secret = re.search(r"^key: (rl_live_\S+)$", rotated, flags=re.M)
    assert new_secret is not None and new_secret.group(1) != secret.group(1)
    new_id = ok_json(stack, "keys", "list", "--tenant", tenant)
    new_key = next(k for k in new_id if k["key_id"] != key_id)  # type: ignore[union-attr]
    revoked = ok_json(stack, "keys", "revoke", new_key["key_id"], "--yes")
    assert revoked["state"] == "API_KEY_STATE_REVOKED"  # type: ignore[index]
    revoked_use = ragline(stack, "collections", "list", key=new_secret.group(1))
    assert revoked_use.returncode == 3 and "KEY_REVOKED" in revoked_use.stderr
    # Usage: a table by day, JSON by hour.
    by_day = ok(stack, "usage")
    assert f"Usage of {DEV_TENANT} by day" in by_day and "By endpoint" in by_day
    by_hour = ok_json(stack, "usage", "--by", "hour", "--since", "2h")
    assert isinstance(by_hour, dict) and by_hour["tenant"] == DEV_TENANT
    assert by_hour["total"]["requests"] > 0 and by_hour["series"]


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_exit_codes_by_error_class(stack, transport):
    flags = ["--grpc"] if transport == "grpc" else []

    def fails(code: int, *args: str, key: str = DEV_KEY) -> str:
        out = ragline(stack, *flags, *args, key=key)
        assert out.returncode == code, (args, out.returncode, out.stderr)
        # One clear line on stderr, nothing on stdout.
        assert out.stdout == "" and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert out.stderr.startswith("ragline: error: ")
        return out.stderr

    line = fails(3, "collections", "list", key="rl_live_not-a-real-key")
    assert "unauthenticated" in line
    assert "JOB_NOT_FOUND" in fails(4, "jobs", "get", "no-such-job")
    assert "COLLECTION_NOT_FOUND" in fails(4, "collections", "get", _name("missing"))
    empty = fails(5, "search", "", "-c", _name("c"))
    assert "invalid argument" in empty and "query" in empty
    bad_name = fails(5, "documents", "list", "-c", "not a name!")
    assert "BAD_COLLECTION_NAME" in bad_name and "collection" in bad_name
    down = ragline(
        stack, *flags, "--base-url", f"http://127.0.0.1:{free_port()}", "collections", "list"
    )
    assert down.returncode == 7 and "unavailable" in down.stderr


def test_rate_limited_exits_6(stack, tmp_path):
    created = ok_json(
        stack,
        "keys",
        "create",
        "--tenant",
        _name("cli-limited"),
        "--scope",
        "ingest",
        "--tier",
        "free",
    )
    key = created["key"]  # type: ignore[index]
    (tmp_path / "tiny.txt").write_text("A tiny document.")
    # Free tier: 10 ingests a minute per key; a minute boundary may reset the window once.
    for _ in range(25):
        out = ragline(stack, "--retries", "0", "ingest", str(tmp_path), "-c", "limited", key=key)
        if out.returncode != 0:
            break
    assert out.returncode == 6, out.stderr
    assert out.stderr.startswith("ragline: error: rate limited: ")
    assert "RATE_LIMITED, HTTP 429, retry after" in out.stderr


def test_base_url_sources(stack):
    # RAGLINE_URL is the CLI's; the SDK's RAGLINE_BASE_URL is the fallback; the flag wins.
    env = _env(None)
    fallback = subprocess.run(
        [str(RAGLINE), "health", "--json"],
        capture_output=True,
        text=True,
        env={**env, "RAGLINE_BASE_URL": stack.cfg.base_url},
        timeout=60,
        check=False,
    )
    assert fallback.returncode == 0, fallback.stderr
    elsewhere = f"http://127.0.0.1:{free_port()}"
    assert ragline(stack, "health", RAGLINE_BASE_URL=elsewhere).returncode == 0
    assert ragline(stack, "--base-url", elsewhere, "health").returncode == 7
    flag = ragline(
        None, "--base-url", stack.cfg.base_url, "--api-key", DEV_KEY, "collections", "list"
    )
    assert flag.returncode == 0, flag.stderr


def test_readme_cli_quick_start_runs(stack, tmp_path):
    readme = (ROOT / "clients" / "python" / "README.md").read_text()
    script = readme.split("## Command line", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line for line in script.strip().splitlines() if not line.startswith("pip install")]
    assert len(script.strip().splitlines()) <= 10
    script = "\n".join(lines).replace("http://localhost:8000", stack.cfg.base_url)
    env = {
        **_env(None, key=None),
        "PATH": f"{RAGLINE.parent}{os.pathsep}{os.environ['PATH']}",
    }
    out = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Envoy transcodes JSON to gRPC." in out.stdout  # the search hit and the citation
    assert "Sources" in out.stdout and "conversation:" in out.stdout
