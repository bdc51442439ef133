"""The one place that touches Faust's and aiokafka's private names.

Everything else in cxstream uses Faust's public API or the functions of this package:

- ``fixes``: the corrections to faust-streaming 0.15.3 (docs/faust-fixes.md), applied by
  the worker (``install``) and by tests (``fixes.applied``, which undoes them);
- ``access``: what Faust offers no public way to do (a table's store, the producer's
  record batches, the current event of a table write, in-flight events, pauses);
- ``worker``: ``faust.Worker`` with a public hook before its stop on a signal.

Private names change without notice between releases, so ``install`` refuses any
faust-streaming, mode-streaming or aiokafka other than the versions this package was
written and tested against.
"""

from __future__ import annotations

from importlib import metadata

from cxstream.streams.kafka.faust_compat import fixes

#: distribution -> the version whose private names this package relies on
SUPPORTED = {"faust-streaming": "0.15.3", "mode-streaming": "0.7.1", "aiokafka": "0.14.0"}


class FaustVersionError(RuntimeError):
    """The installed Faust or aiokafka is not the version cxstream's fixes are for."""


def version_problems(installed: dict[str, str | None] | None = None) -> list[str]:
    """What differs from SUPPORTED, one line per distribution (empty: all as expected).
    ``installed``: distribution -> version (None: not installed); default: this process."""
    if installed is None:
        installed = {}
        for name in SUPPORTED:
            try:
                installed[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                installed[name] = None
    return [f"{name} {installed.get(name) or 'not installed'} is installed; cxstream needs "
            f"{name}=={wanted}" for name, wanted in SUPPORTED.items()
            if installed.get(name) != wanted]


def check_versions() -> None:
    problems = version_problems()
    if problems:
        raise FaustVersionError(
            "; ".join(problems) + " (its fixes to Faust use private names of exactly "
            "these releases: install cxstream's pinned dependencies)")


def install() -> None:
    """Check the versions, then apply the fixes (once per process)."""
    check_versions()
    fixes.apply()


__all__ = ["SUPPORTED", "FaustVersionError", "check_versions", "fixes", "install",
           "version_problems"]
