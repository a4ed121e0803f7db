"""Claims: which process is scoring which queries of a teacher, so that processes on the same shard share the work.

Each process appends the queries it claims to its own file ``.claim-<owner>-<n>`` in the teacher's folder and holds an
flock on that file while it lives; ``release`` removes the file, and the next claim starts file ``n + 1`` (a new name:
another process never takes it for the old file it read part of). Another process counts a claim while the file is
locked (its owner lives) and was renewed within ``lease`` seconds (its owner is not hung); a file nobody locks belongs
to a dead process and is removed. Callers hold the teacher's lock (``ScoreCache._locked``) around ``taken`` and
``add``.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

from ..data.io import _open_for_lock, _try_lock

CLAIM = ".claim-"


@dataclass
class _Seen:
    """Another owner's claim file as last read: its qids, and how far it was read."""

    qids: set[str] = field(default_factory=set)
    inode: int | None = None
    offset: int = 0


class Claims:
    def __init__(self, owner: str, lease: float):
        self.owner, self.lease = owner, lease
        self._mine: dict[str, tuple[int, str, set[str]]] = {}  # teacher folder -> (fd, path of our claim file, qids)
        self._theirs: dict[str, dict[str, _Seen]] = {}
        self._files = 0  # claim files this process started

    def taken(self, folder: str) -> set[str]:
        """Queries claimed in ``folder`` by other live owners with a fresh lease; dead owners' files are removed."""
        seen = self._theirs.setdefault(folder, {})
        out: set[str] = set()
        now = time.time()
        names = [n for n in os.listdir(folder) if n.startswith(CLAIM) and not n.startswith(f"{CLAIM}{self.owner}-")]
        for gone in seen.keys() - set(names):  # released files: forget them
            del seen[gone]
        for name in names:
            path = os.path.join(folder, name)
            try:
                fd = _open_for_lock(path)
            except OSError:
                continue
            try:
                if _try_lock(fd):  # nobody holds it: its owner is gone (or released it as we opened it)
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                    seen.pop(name, None)
                    continue
                st = os.fstat(fd)
                if now - st.st_mtime > self.lease:  # alive but silent for a whole lease: treated as hung
                    continue
                claims = seen.setdefault(name, _Seen())
                if st.st_ino != claims.inode or st.st_size < claims.offset:
                    claims.qids, claims.inode, claims.offset = set(), st.st_ino, 0
                data = os.pread(fd, st.st_size - claims.offset, claims.offset)
                complete = data[: data.rfind(b"\n") + 1]
                claims.offset += len(complete)
                claims.qids.update(complete.decode("utf-8", "replace").split("\n")[:-1])
                out |= claims.qids
            finally:
                os.close(fd)
        return out

    def add(self, folder: str, qids) -> None:
        """Record ``qids`` as ours (creating and locking our claim file on first use) and renew our lease."""
        if folder not in self._mine:
            self._files += 1
            path = os.path.join(folder, f"{CLAIM}{self.owner}-{self._files}")
            fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_APPEND, 0o666)
            _try_lock(fd)
            self._mine[folder] = (fd, path, set())
        fd, _, mine = self._mine[folder]
        new = [q for q in qids if q not in mine]
        if new:
            os.write(fd, "".join(q + "\n" for q in new).encode())
            mine.update(new)
        os.utime(fd)

    def renew(self, folder: str) -> None:
        if folder in self._mine:
            with contextlib.suppress(OSError):
                os.utime(self._mine[folder][0])

    def folders(self) -> list[str]:
        """The teacher folders we hold a claim file in."""
        return list(self._mine)

    def release(self, folder: str | None = None) -> None:
        """Drop our claims in ``folder`` (or everywhere): remove our claim file."""
        for f in [folder] if folder is not None else list(self._mine):
            if f in self._mine:
                fd, path, _ = self._mine.pop(f)
                with contextlib.suppress(OSError):
                    os.unlink(path)
                os.close(fd)
