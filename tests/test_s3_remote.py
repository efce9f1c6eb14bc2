"""DVC's S3 remote round trip against a moto server on loopback.

A tmp git+DVC repo holds a `dvc add`-ed directory and a stage output. `dvc push` sends both to
s3://stagetrack-test/store (moto, in this process, on 127.0.0.1), the cache and the files are
deleted, and `dvc pull` must restore them byte for byte. Every dvc process runs with the network
guard (tests/netguard): a connection or DNS look-up anywhere but loopback is refused and recorded,
and the record must stay empty.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require

boto3 = require("boto3")
moto_server = require("moto.server")

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
BUCKET = "stagetrack-test"
# the stage: a derived "model" from the added data, so a pipeline output travels too
MAKE = """\
import hashlib, pathlib
data = b"".join(p.read_bytes() for p in sorted(pathlib.Path("data/raw").iterdir()))
pathlib.Path("model.bin").write_bytes(hashlib.sha256(data).digest() * 64 + data[::-1])
"""
DVC_YAML = """\
stages:
  make:
    cmd: python make.py
    deps: [make.py, data/raw]
    outs: [model.bin]
"""


@pytest.fixture(scope="module")
def s3_endpoint():
    server = moto_server.ThreadedMotoServer("127.0.0.1", 0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join([str(HERE / "netguard"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "STAGETRACK_NETGUARD_LOG": str(tmp / "network.log"),
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "s3", "GIT_COMMITTER_NAME": "s3",
        "GIT_AUTHOR_EMAIL": "s3@example.invalid", "GIT_COMMITTER_EMAIL": "s3@example.invalid",
        # dummy credentials; no user config files, no instance-metadata look-ups
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
    })
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True, timeout=180)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout


def _tree(root: Path, paths: list[str]) -> dict[str, bytes]:
    out = {}
    for rel in paths:
        p = root / rel
        for f in sorted([p] if p.is_file() else p.rglob("*")):
            if f.is_file():
                out[f.relative_to(root).as_posix()] = f.read_bytes()
    return out


def test_push_then_pull_restores_data_and_outputs(s3_endpoint, tmp_path):
    env = _env(tmp_path)
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)

    repo = tmp_path / "repo"
    (repo / "data" / "raw").mkdir(parents=True)
    (repo / "data" / "raw" / "a.bin").write_bytes(os.urandom(50_000))
    (repo / "data" / "raw" / "b.txt").write_text("frame,id\n1,7\n")
    (repo / "make.py").write_text(MAKE)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    _run(["git", "init", "-q", "-b", "main"], repo, env)
    _run(["dvc", "init", "-q"], repo, env)
    _run(["dvc", "add", "-q", "data/raw"], repo, env)
    _run(["dvc", "repro", "-q"], repo, env)
    _run(["dvc", "remote", "add", "-d", "store", f"s3://{BUCKET}/store"], repo, env)
    _run(["dvc", "remote", "modify", "store", "endpointurl", s3_endpoint], repo, env)
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "data, stage, remote"], repo, env)
    tracked = ["data/raw", "model.bin"]
    before = _tree(repo, tracked)
    assert set(before) == {"data/raw/a.bin", "data/raw/b.txt", "model.bin"}

    _run(["dvc", "push", "-q"], repo, env)
    assert json.loads(_run(["dvc", "status", "--cloud", "--json"], repo, env)) == {}
    listed = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing").list_objects_v2(Bucket=BUCKET, Prefix="store/")
    # a.bin, b.txt, model.bin and the directory's .dir manifest, content-addressed under files/md5
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert len(keys) == 4 and all(k.startswith("store/files/md5/") for k in keys), keys

    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "data" / "raw")
    (repo / "model.bin").unlink()
    _run(["dvc", "pull", "-q"], repo, env)
    assert _tree(repo, tracked) == before
    assert json.loads(_run(["dvc", "status", "--json"], repo, env)) == {}

    log = Path(env["STAGETRACK_NETGUARD_LOG"])
    attempts = log.read_text() if log.exists() else ""
    assert attempts == "", f"network access outside loopback:\n{attempts[:4000]}"


def test_guard_sees_dvc_s3_traffic(tmp_path):
    # control for the empty record above: without an endpoint, dvc-s3 (aiobotocore) resolves
    # the real S3 host, and the guard refuses and records it
    env = _env(tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "f.txt").write_text("x\n")
    _run(["git", "init", "-q", "-b", "main"], repo, env)
    _run(["dvc", "init", "-q"], repo, env)
    _run(["dvc", "add", "-q", "f.txt"], repo, env)
    _run(["dvc", "remote", "add", "-d", "aws", f"s3://{BUCKET}/store"], repo, env)
    proc = subprocess.run(["dvc", "push", "-q"], cwd=repo, env=env, text=True, capture_output=True, timeout=180)
    assert proc.returncode != 0
    assert f"getaddrinfo '{BUCKET}.s3.amazonaws.com'" in Path(env["STAGETRACK_NETGUARD_LOG"]).read_text()
