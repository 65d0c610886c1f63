"""Job files in a directory: one machine's disk, or a volume that API pods and workers share.

Layout under the root: ``incoming/`` (uploads being received), ``jobs/<id>/upload`` (a
source waiting for its worker), ``jobs/<id>/scratch/`` (an attempt's temporary files),
``jobs/<id>/thumbnail.jpg`` and ``jobs/<id>/clips/<n>.mp4`` (the outputs).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from datetime import timedelta
from pathlib import Path
from uuid import UUID


class LocalMediaStore:
    """Implements :class:`domain.video.ports.MediaStore`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _job_dir(self, job_id: UUID) -> Path:
        return self.root / "jobs" / str(job_id)

    def incoming_dir(self) -> Path:
        path = self.root / "incoming"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def upload_path(self, job_id: UUID) -> Path:
        return self._job_dir(job_id) / "upload"

    def adopt_upload(self, job_id: UUID, received: Path) -> None:
        destination = self.upload_path(job_id)
        destination.parent.mkdir(parents=True, exist_ok=True)
        received.replace(destination)  # same filesystem: a rename, whatever the size

    def scratch_dir(self, job_id: UUID) -> Path:
        path = self._job_dir(job_id) / "scratch"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def thumbnail_path(self, job_id: UUID) -> Path:
        return self._job_dir(job_id) / "thumbnail.jpg"

    def clip_path(self, job_id: UUID, number: int) -> Path:
        path = self._job_dir(job_id) / "clips" / f"{number}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def discard_scratch(self, job_id: UUID) -> None:
        shutil.rmtree(self._job_dir(job_id) / "scratch", ignore_errors=True)

    def discard_sources(self, job_id: UUID) -> None:
        self.discard_scratch(job_id)
        self.upload_path(job_id).unlink(missing_ok=True)

    def job_ids_on_disk(self) -> list[UUID]:
        jobs = self.root / "jobs"
        if not jobs.is_dir():
            return []
        found = []
        for entry in jobs.iterdir():
            with contextlib.suppress(ValueError):
                found.append(UUID(entry.name))
        return found

    def discard_incoming_older_than(self, age: timedelta) -> None:
        incoming = self.root / "incoming"
        if not incoming.is_dir():
            return
        cutoff = time.time() - age.total_seconds()
        for entry in incoming.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()

    def discard_all(self, job_id: UUID) -> None:
        shutil.rmtree(self._job_dir(job_id), ignore_errors=True)
