"""Line readers for JSONL and TSV that report the file and line of bad input, and atomic, umask-respecting writes
whose leftovers (``.tmp-*`` of killed writers) are removed by the next run."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import time
import uuid
import zlib
from typing import Iterator, Sequence

from ..errors import InputError, require_file

# Every character Python's str.split() and str.isspace() treat as whitespace (29 code points), as one class that
# both Python's re and RE2 (pyarrow.compute) read the same way. An id holding one cannot be written to a TREC file;
# nor one holding a control character or U+FEFF (a byte-order mark at the start of a line is dropped by readers).
WHITESPACE = ("\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}"
              "\\x{205f}\\x{3000}")
RE2_BAD_ID = "[" + WHITESPACE + "\\x00-\\x1f\\x7f-\\x9f\\x{feff}]"
_BAD_ID = re.compile(re.sub(r"\\x\{([0-9a-f]+)\}", r"\\u\1", RE2_BAD_ID))


def id_problem(text: str) -> str | None:
    """Why ``text`` cannot be an id (``"contains whitespace"``...), or None if it can."""
    found = _BAD_ID.search(text)
    if found is None:
        return None
    char = found.group()
    return "contains whitespace" if char.isspace() else f"contains the invisible character {char!r}"


def check_id(value, what: str, path=None, line: int | None = None) -> str:
    """``value`` as an id string (ints are accepted, surrounding whitespace stripped), or InputError if it is empty,
    not a string or number, or holds whitespace or an invisible character (a TREC file could not hold it)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(f"{what} must be a string, not {type(value).__name__}", path, line)
    try:
        text = str(value).strip()
    except ValueError:  # an int too long to print
        raise InputError(f"{what} is too long", path, line) from None
    if not text:
        raise InputError(f"empty {what}", path, line)
    problem = id_problem(text)
    if problem:
        raise InputError(f"{what} {text!r} {problem} (TREC files cannot hold it)", path, line)
    check_text(text, what, path, line)
    return text


def check_text(text: str, what: str, path=None, line: int | None = None) -> str:
    """InputError if ``text`` cannot be stored as UTF-8 (a lone surrogate, e.g. from a JSON ``\\ud800`` escape)."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InputError(f"{what} holds an invalid character (lone surrogate {text[e.start]!r})", path, line) from None
    return text


def read_lines(path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` of a UTF-8 text file (gzip if it ends in ``.gz``), without the line ending.

    Lines end at ``\\n`` only; a byte-order mark on the first line is dropped. Bytes that are not UTF-8, a damaged gzip
    stream or an unreadable file raise InputError naming the file and line."""
    path = require_file(path)
    gz = path.endswith(".gz")
    try:
        if gz:
            import gzip

            f = gzip.open(path, "rb")
        else:
            f = open(path, "rb")
    except OSError as e:
        raise InputError(f"cannot read this file ({e.strerror or e})", path) from None
    n = 0
    with f:
        lines = iter(f)
        while True:
            try:
                raw = next(lines)
            except StopIteration:
                return
            except (OSError, EOFError, zlib.error) as e:
                what = "not a readable gzip file" if gz else "cannot read this file"
                raise InputError(f"{what} ({e})", path, n + 1) from None
            n += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1})", path, n) from None
            if n == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield n, text.rstrip("\n").rstrip("\r")


def read_jsonl(path, required: Sequence[str] = ()) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for each non-blank line; every record must hold the ``required`` keys."""
    for n, line in read_lines(path):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"malformed JSON ({e.msg})", path, n) from None
        except (ValueError, RecursionError) as e:  # a number too long, nesting too deep
            raise InputError(f"malformed JSON ({str(e) or type(e).__name__})"[:200], path, n) from None
        if not isinstance(rec, dict):
            raise InputError("expected a JSON object", path, n)
        missing = [k for k in required if k not in rec]
        if missing:
            raise InputError(f"missing field(s) {', '.join(missing)}", path, n)
        yield n, rec


def read_tsv(path, columns: int, header: Sequence[str] | None = None, sep: str | None = "\t"):
    """Yield ``(line_number, fields)`` with exactly ``columns`` fields per line.

    ``header``: if the first line starts with these names it is skipped. ``sep=None`` splits on any whitespace
    (TREC files)."""
    first = True
    for n, line in read_lines(path):
        if not line.strip():
            continue
        fields = line.split(sep)
        if first and header and [x.strip().lower() for x in fields[: len(header)]] == list(header):
            first = False
            continue
        first = False
        if len(fields) != columns:
            raise InputError(f"expected {columns} columns, found {len(fields)}", path, n)
        yield n, fields


# atomic writes ----------------------------------------------------------------------------------------------------
TMP = ".tmp-"
DIR_LOCK = ".irdistill-lock"  # held (flock) inside a temporary folder while its writer lives
STALE_AFTER = 3600.0  # seconds without a change after which an unlocked leftover of unknown owner is removed
_cleaned: set[str] = set()
_OURS = re.compile(r"\.tmp-[0-9a-f]{12}-")
_BUILDERS = (".tmp-bm25-", ".tmp-index-", ".tmp-colbert-", ".tmp-splade-")  # tempfile.mkdtemp folders of index/


def _try_lock(fd: int) -> bool | None:
    """flock ``fd`` without waiting: True if taken, False if another process holds it, None if locks do not work."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError:
        return None


def _open_for_lock(path: str) -> int:
    """Open an existing file so that it can be flocked (read-write if allowed, else read-only; never follows a link)."""
    try:
        return os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except PermissionError:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW)


@contextlib.contextmanager
def file_lock(path):
    """Hold an exclusive ``flock`` on ``path`` (created if missing, never deleted) for the block; waits for it.

    flock is released by the kernel when the holder dies, so a killed process never leaves a lock behind. On NFS
    (v3 with lockd, v4) Linux maps flock to byte-range locks, which work across machines; on Lustre only if mounted
    with ``-o flock``; on file systems without locks this raises OSError."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o666)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except IsADirectoryError:
        raise InputError("a folder where a lock file belongs: remove it", path) from None
    except OSError as e:  # a link (never followed), a dangling parent...
        raise InputError(f"cannot open this lock file ({e.strerror or e}): remove it", path) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def _newest_mtime(path: str) -> float:
    st = os.lstat(path)
    newest = st.st_mtime
    if stat.S_ISDIR(st.st_mode):
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest


def _owner_alive(path: str, is_dir: bool) -> bool | None:
    """Whether the writer of a ``.tmp-*`` entry still runs: True/False from its lock, None if it has no usable lock."""
    try:
        fd = _open_for_lock(os.path.join(path, DIR_LOCK) if is_dir else path)
    except OSError:
        return None
    try:
        taken = _try_lock(fd)
        return None if taken is None else not taken
    finally:
        os.close(fd)


def clean_stale(folder, stale_after: float = STALE_AFTER, min_age: float = 1.0) -> list[str]:
    """Remove the ``.tmp-*`` files and folders in ``folder`` that killed writers left; returns what was removed.

    Only irdistill's own temporaries are touched: those of ``atomic_path`` / ``atomic_dir`` (``.tmp-<12 hex>-...``)
    and the index builders' folders (``.tmp-bm25-``, ``-index-``, ``-colbert-``, ``-splade-``). One whose lock is free
    has lost its writer and goes once it is ``min_age`` seconds old; one whose lock is held is in use and stays; one
    without a usable lock (the builders' folders, or a file system without locks) goes only when nothing in it
    changed for ``stale_after`` seconds."""
    folder = os.fspath(folder)
    removed = []
    try:
        names = [n for n in os.listdir(folder) if _OURS.match(n) or n.startswith(_BUILDERS)]
    except OSError:
        return removed
    now = time.time()
    for name in names:
        path = os.path.join(folder, name)
        try:
            st = os.lstat(path)
            is_dir = stat.S_ISDIR(st.st_mode)
            ours = bool(_OURS.match(name)) and not stat.S_ISLNK(st.st_mode)
            if not (ours or is_dir):
                continue
            alive = _owner_alive(path, is_dir) if ours else None
            if alive or (alive is False and now - st.st_mtime < min_age):  # min_age: just created, lock not yet taken
                continue
            if alive is None and now - _newest_mtime(path) < stale_after:
                continue
        except OSError:
            continue
        if is_dir:
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)
        removed.append(path)
    return removed


def _clean_once(folder: str) -> None:
    if folder not in _cleaned:
        _cleaned.add(folder)
        clean_stale(folder)


def _tmp_name(folder: str, base: str) -> str:
    return os.path.join(folder, f"{TMP}{uuid.uuid4().hex[:12]}-{base[:120]}")


# what an output may be written over -------------------------------------------------------------------------------
_KINDS = ((stat.S_ISREG, "file"), (stat.S_ISDIR, "folder"), (stat.S_ISLNK, "link"), (stat.S_ISCHR, "character device"),
          (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"))


def _what(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "special file")


def check_output(path, kind: str = "file", option: str = "--output"):
    """``path`` (None passes through) if a ``kind`` (``"file"`` or ``"folder"``) may be written there, else InputError
    naming ``option``: a file never over a folder, device, fifo or socket (a link to a file is fine), a folder never
    over a non-folder; a new output's nearest existing folder (a file's folder) must be writable, while an existing
    folder may be read-only (an index that is only reused). Call it before any work starts."""
    if path is None:
        return None
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing, or a dangling link: a file replaces it, a folder does not
        mode = None if kind == "file" or not os.path.lexists(path) else stat.S_IFLNK
    if mode is not None and not (stat.S_ISDIR if kind == "folder" else stat.S_ISREG)(mode):
        raise InputError(f"{option} names a {_what(mode)}, not a {kind}", path)
    if kind == "folder" and mode is not None:
        return path
    near = os.path.dirname(os.path.abspath(path))
    while not os.path.lexists(near):
        near = os.path.dirname(near)
    if not os.path.isdir(near):
        raise InputError(f"{option}: {near} is not a folder", path)
    if not os.access(near, os.W_OK | os.X_OK):
        raise InputError(f"{option}: cannot write in {near} (permission denied)", path)
    return path


def _refuse_over(path: str, folder: bool) -> None:
    """InputError if ``path`` holds what a writer must not replace: anything but a file or a link (the link is
    replaced, never followed) for ``atomic_path``; anything but a folder or a link to one for ``atomic_dir``."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if folder:
        ok = stat.S_ISDIR(mode) or (stat.S_ISLNK(mode) and os.path.isdir(path))
    else:
        ok = stat.S_ISREG(mode) or stat.S_ISLNK(mode)
    if not ok:
        raise InputError(f"will not replace a {_what(mode)} with a {'folder' if folder else 'file'}", path)


def _make_folder(folder: str) -> None:
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create this folder ({e.strerror or e})", folder) from None


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    The file is created with mode 0666 less the umask (like ``open``), and flocked while the block runs, so the next
    run's ``clean_stale`` (done once per folder and process) knows a leftover of a killed writer from a live one."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    _refuse_over(path, folder=False)
    _make_folder(folder)
    _clean_once(folder)
    while True:
        tmp = _tmp_name(folder, os.path.basename(path))
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666)
            break
        except FileExistsError:
            continue
    try:
        _try_lock(fd)
        yield tmp
        _refuse_over(path, folder=False)  # again: it may have appeared while the block ran
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a fresh temporary folder beside ``path``; when the block succeeds it replaces ``path`` (an existing
    folder there is removed). Follows the umask; a killed build's folder is removed by the next ``clean_stale``."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    _refuse_over(path, folder=True)
    _make_folder(folder)
    _clean_once(folder)
    while True:
        work = _tmp_name(folder, os.path.basename(path))
        try:
            os.mkdir(work)
            break
        except FileExistsError:
            continue
    lock = os.path.join(work, DIR_LOCK)
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o666)
    try:
        _try_lock(fd)
        yield work
        os.remove(lock)
        _refuse_over(path, folder=True)
        if os.path.lexists(path):
            old = _tmp_name(folder, "old-" + os.path.basename(path))
            os.rename(path, old)
            os.rename(work, path)
            shutil.rmtree(old, ignore_errors=True) if stat.S_ISDIR(os.lstat(old).st_mode) else os.remove(old)
        else:
            os.rename(work, path)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def undo_on_error(folder):
    """Create ``folder`` (and its missing parents) for the block; if the block fails, remove what it added: the
    folders it created, or else the entries new in ``folder`` (a writer of several files leaves none of them)."""
    folder = os.path.abspath(os.fspath(folder))
    top = folder
    while not os.path.lexists(os.path.dirname(top)):
        top = os.path.dirname(top)
    created = not os.path.lexists(top)
    before = set() if created else set(os.listdir(folder)) if os.path.isdir(folder) else set()
    _make_folder(folder)
    try:
        yield folder
    except BaseException:
        if created:
            shutil.rmtree(top, ignore_errors=True)
        else:
            for name in set(os.listdir(folder)) - before:
                path = os.path.join(folder, name)
                with contextlib.suppress(OSError):
                    shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
        raise


# values computed from a file, kept by the file's size and modification time -------------------------------------------
def stat_key(path) -> dict:
    """What changes when a file is edited or replaced: its real path, size, modification and change times, inode."""
    st = os.stat(path)
    return {"path": os.path.realpath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns, "inode": st.st_ino}


def user_cache(*parts: str) -> str:
    """A path under irdistill's folder of the user cache (``$XDG_CACHE_HOME/irdistill``, default ``~/.cache``)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "irdistill", *parts)


def _sidecars(path: str, beside: bool) -> list[str]:
    real = os.path.realpath(path)
    user = user_cache("fingerprints", hashlib.sha1(real.encode()).hexdigest()[:20] + ".json")
    return ([os.path.join(os.path.dirname(real), f".{os.path.basename(real)}.fingerprint.json")] if beside else []) + [user]


def remembered(path, key: dict, compute, beside: bool = True) -> str:
    """``compute()`` (a fingerprint of the file at ``path``), kept in a small JSON beside the file (``beside`` and the
    folder is writable) or in ``$XDG_CACHE_HOME/irdistill/fingerprints``, and reused while ``key`` (see ``stat_key``)
    is unchanged. A value computed while the file changed is not kept."""
    for sidecar in _sidecars(path, beside):
        try:
            with open(sidecar, encoding="utf-8") as f:
                rec = json.load(f)
            if rec["key"] == key and isinstance(rec["fingerprint"], str):
                return rec["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    value = compute()
    try:
        unchanged = {**key, **stat_key(path)} == key
    except OSError:
        unchanged = False
    for sidecar in _sidecars(path, beside) if unchanged else []:
        folder = os.path.dirname(sidecar)
        if os.path.isdir(folder) and not os.access(folder, os.W_OK):
            continue
        try:
            with atomic_path(sidecar) as tmp, open(tmp, "w", encoding="utf-8") as f:
                json.dump({"key": key, "fingerprint": value}, f)
            break
        except OSError:
            continue
    return value
