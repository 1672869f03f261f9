"""Blobs in an S3-compatible bucket: moto's server mode as the bucket, a real hub process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conftest import optional_import
from hub_server import free_port, start_server

pytestmark = pytest.mark.slow
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def test_upload_and_download_with_s3_blobs(tmp_path: Path) -> None:
    optional_import("moto.server", "dev")
    boto3: Any = optional_import("boto3", "hub")
    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **CREDENTIALS},
    )
    s3_url = f"http://127.0.0.1:{port}"
    server = None
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(s3_url, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_url,
            **{
                "aws_access_key_id": "testing",
                "aws_secret_access_key": "testing",
                "region_name": "us-east-1",
            },
        )
        s3.create_bucket(Bucket="hub-blobs")
        server = start_server(
            tmp_path,
            extra_args=("--s3-bucket", "hub-blobs", "--s3-endpoint-url", s3_url),
            extra_env=CREDENTIALS,
        )
        out = server.client("""
            import os
            from huggingface_hub import HfApi, hf_hub_download
            api = HfApi()
            api.create_repo("s3")
            data = os.urandom(11 * 1024 * 1024)
            api.upload_file(path_or_fileobj=data, path_in_repo="w.safetensors", repo_id="tether/s3")
            got = open(hf_hub_download("tether/s3", "w.safetensors"), "rb").read()
            print(got == data)
        """)
        assert out.stdout.split()[-1] == "True"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="hub-blobs").get("Contents", [])]
        assert len(keys) >= 2 and all(k.startswith("blobs/") for k in keys)
        assert not (server.data / "blobs").exists()
    finally:
        if server is not None:
            server.kill()
        moto.terminate()
        moto.wait(timeout=30)
