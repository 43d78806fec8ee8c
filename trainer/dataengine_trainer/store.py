"""The blob store the trainer shares with the platform (docs/contracts.md "Blob store"): the folder
STORE_DIR, or an S3-compatible bucket when STORE_URL is s3://bucket/prefix (S3_ENDPOINT for a
server other than AWS, path-style; credentials from boto3's usual chain, e.g. AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY). Training reads and writes local files, so a bucket is mirrored: a step's
inputs are downloaded into a temporary folder of its own, its outputs uploaded after it, and the
folder removed (a worker's disk holds one step's data at a time)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

# Objects downloaded at once when a dataset's images are fetched from a bucket.
DOWNLOAD_THREADS = 8
# Files a training step leaves in its model folder that are its own working state, not outputs.
_WORKING_FILES = {"resume.pt"}


def checked_key(key: str) -> str:
    p = PurePosixPath(key)
    if p.is_absolute() or ".." in p.parts:
        raise ValueError(f"store keys are relative paths without '..': {key!r}")
    return str(p)


class FolderStore:
    """The folder STORE_DIR: keys are paths under it; nothing to fetch or publish."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / checked_key(key) if key else self.root

    def fetch(self, key: str) -> Path | None:
        p = self.path(key)
        return p if p.exists() else None

    def fetch_dataset(self, dataset_key: str, image_root_key: str | None) -> tuple[Path, Path]:
        json_path = self.path(dataset_key)
        return json_path, self.path(image_root_key) if image_root_key is not None else json_path.parent

    def publish(self, prefix: str) -> None:
        """Outputs are already in place."""


class S3Store(FolderStore):
    """A bucket, mirrored into a local folder laid out like STORE_DIR (keys map to paths there as
    in a folder store; fetching downloads, publishing uploads)."""

    def __init__(self, url: str, endpoint: str | None, region: str, mirror: Path):
        m = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?", url)
        if not m:
            raise ValueError(f"STORE_URL {url!r} is not s3://bucket[/prefix]")
        import boto3  # Only a bucket store needs the AWS SDK.
        from botocore.config import Config

        self.bucket = m.group(1)
        self.prefix = (m.group(2) or "").strip("/")
        super().__init__(mirror)
        self.client = boto3.client(
            "s3", endpoint_url=endpoint, region_name=region, config=Config(s3={"addressing_style": "path"})
        )

    def _object(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _download(self, key: str) -> Path | None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Downloaded beside the target and renamed: a killed download leaves no torn file.
        tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            self.client.download_file(self.bucket, self._object(checked_key(key)), str(tmp))
        except self.client.exceptions.ClientError as err:
            tmp.unlink(missing_ok=True)
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        tmp.replace(target)
        return target

    def fetch(self, key: str) -> Path | None:
        return self._download(key)

    def fetch_dataset(self, dataset_key: str, image_root_key: str | None) -> tuple[Path, Path]:
        json_path = self._download(dataset_key)
        if json_path is None:
            raise FileNotFoundError(f"dataset {dataset_key} is not in {self.bucket}/{self.prefix}")
        root_key = image_root_key if image_root_key is not None else str(PurePosixPath(dataset_key).parent)
        root_key = "" if root_key == "." else root_key
        names = [im["file_name"] for im in json.loads(json_path.read_text())["images"]]
        keys = [f"{root_key}/{n}" if root_key else n for n in names]
        keys = list(dict.fromkeys(keys))
        with concurrent.futures.ThreadPoolExecutor(DOWNLOAD_THREADS) as pool:
            for key, got in zip(keys, pool.map(self._download, keys), strict=True):
                if got is None:
                    raise FileNotFoundError(f"image {key} of dataset {dataset_key} is not in the bucket")
        return json_path, self.path(root_key)

    def publish(self, prefix: str) -> None:
        """Uploads the files under `prefix` in the mirror (a model's outputs) to the bucket."""
        folder = self.path(prefix)
        for f in sorted(folder.rglob("*")):
            if f.is_file() and f.name not in _WORKING_FILES and not f.name.endswith((".tmp", ".part")):
                key = f"{prefix}/{f.relative_to(folder).as_posix()}"
                self.client.upload_file(str(f), self.bucket, self._object(key))


@contextlib.contextmanager
def opened_store() -> Iterator[FolderStore | S3Store]:
    """The store of STORE_URL / STORE_DIR for one activity; a bucket's mirror is removed after it."""
    url = os.environ.get("STORE_URL")
    if not url:
        default = Path(__file__).resolve().parents[2] / "data" / "store"
        yield FolderStore(Path(os.environ.get("STORE_DIR", default)))
        return
    mirror = Path(tempfile.mkdtemp(prefix="dataengine-trainer-"))
    try:
        yield S3Store(url, os.environ.get("S3_ENDPOINT"), os.environ.get("S3_REGION", "us-east-1"), mirror)
    finally:
        shutil.rmtree(mirror, ignore_errors=True)
