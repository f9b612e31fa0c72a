"""Scenarios without restart: watch the scenarios folder, check first, swap the plan, keep the state, audit it.

A reload (the folder changed, SIGHUP, or ``POST /admin/reload``) compiles every
file again. If anything fails to check or to bind to the reference data, the
reload is refused as a whole — the error, with ``FILE:LINE:COL``, goes to the
log and the audit log — and the running scenarios go on. Otherwise a new
engine is built from the new plan and the running engine's state is handed to
it: a scenario whose pattern did not change keeps its state, a changed or
withdrawn one drops it. Every publish, change, withdrawal and refusal is one
JSON line in the audit log: scenario, version (content hash), time, who.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Protocol

import anyio
import msgspec
import structlog

from kairos import dsl
from kairos._compile import compile_configured, refuse_unknown_names
from kairos._config import Config, StartError
from kairos._units import Unit, log_deepened
from kairos.adapters import TemplateCatalog, wall_ms
from kairos.engine import BindError, BuildError, Engine, Reference, catalogue_in_use, transfer_state
from kairos.plan import Plan

log = structlog.get_logger("kairos.reload")


class AuditRecord(msgspec.Struct, frozen=True):
    """One line of the audit log."""

    ts: int  #: wall clock, epoch ms
    action: Literal["publish", "change", "withdraw", "refuse"]
    scenario: str  #: empty for a refused reload
    version: str  #: the content hash now running (the refused/withdrawn one's for those)
    who: str  #: ``start``, ``watch``, ``signal`` or the admin request's user
    previous: str = ""  #: the version it replaced (change, withdraw)
    detail: str = ""  #: why a reload was refused


class AuditLog:
    """Appends audit records as JSON lines, fsynced: operators must be able to say what ran when."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._encode = msgspec.json.Encoder().encode

    def write(self, records: list[AuditRecord]) -> None:
        if not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            f.write(b"".join(self._encode(r) + b"\n" for r in records))
            f.flush()
            os.fsync(f.fileno())


def versions(plan: Plan) -> dict[str, str]:
    return {s.name: s.version for s in plan.scenarios}


def changes(before: dict[str, str], after: dict[str, str], who: str) -> list[AuditRecord]:
    """The audit records that turn the ``before`` scenario versions into ``after``."""
    now = wall_ms()
    out = []
    for name, version in after.items():
        if name not in before:
            out.append(AuditRecord(now, "publish", name, version, who))
        elif before[name] != version:
            out.append(AuditRecord(now, "change", name, version, who, previous=before[name]))
    for name, version in before.items():
        if name not in after:
            out.append(AuditRecord(now, "withdraw", name, version, who, previous=version))
    return out


class ReloadResult(msgspec.Struct, frozen=True):
    """What a reload did (the admin endpoint answers with it)."""

    ok: bool
    published: list[str] = []
    changed: list[str] = []
    withdrawn: list[str] = []
    error: str = ""


def folder_fingerprint(path: str | Path) -> str:
    """A hash of every ``*.kairos`` file's (and the template catalogue's) name and content below ``path``."""
    p = Path(path)
    files = sorted([*p.rglob("*.kairos"), *p.rglob("templates.toml")]) if p.is_dir() else [p]
    h = hashlib.sha256()
    for f in files:
        try:
            data = f.read_bytes()
        except OSError:
            continue
        h.update(str(f).encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def _internal(folder: str | Path, doing: str, e: BaseException) -> str:
    """The refusal of a reload that failed on a bug of ours (the traceback goes to the log)."""
    return (f"{folder}: error: internal error of Kairos while {doing} the new scenarios: "
            f"{type(e).__name__}: {e} (please report it with the scenario files)")


class Reloadable(Protocol):
    """What a reload uses of the daemon: its configuration, the plan and units running, a way to build
    an engine like theirs, and the swap (``kairos._daemon.Daemon`` hands itself)."""

    @property
    def config(self) -> Config: ...

    @property
    def reference(self) -> Reference: ...

    @property
    def plan(self) -> Plan: ...

    @property
    def units(self) -> Mapping[str, Unit]: ...

    def new_engine(self, plan: Plan, reference: Reference, unit: str = ...) -> Engine: ...

    def swap(self, plan: Plan, engines: dict[str, Engine], templates: TemplateCatalog | None = None) -> None: ...


class Reloader:
    """Swaps the daemon's plan; ``watch`` polls the folder."""

    def __init__(self, daemon: Reloadable, audit: AuditLog, *, poll_s: float, config_path: str | Path = "") -> None:
        self.daemon = daemon
        self.config_path = config_path  #: named in errors (a channel missing from its ``[channels]``)
        self.audit = audit
        self.poll_s = poll_s
        self.reloads = 0
        self.refused = 0
        self._seen = folder_fingerprint(daemon.config.scenarios)

    def reload(self, who: str) -> ReloadResult:
        """Compile the folder again and swap to it if it checks; refuse and report otherwise."""
        d = self.daemon
        try:
            self._seen = folder_fingerprint(d.config.scenarios)
        except OSError as e:
            return self._refuse(who, f"scenarios: {e}")
        try:
            plan, templates = compile_configured(d.config, self.config_path, catalogue_in_use())
            refuse_unknown_names(plan, d.reference)  # a list or area the data lacks, at its use (as replay)
            d.new_engine(plan, d.reference)  # binds, or says what is missing
        except dsl.CheckError as e:
            return self._refuse(who, str(e))
        except (StartError, BindError) as e:
            return self._refuse(who, str(e), exc_info=e if isinstance(e, BuildError) else None)
        except Exception as e:  # a bug of ours: refused like a bad file, the running scenarios go on
            return self._refuse(who, _internal(d.config.scenarios, "compiling", e), exc_info=e)
        records = changes(versions(d.plan), versions(plan), who)
        if not records:
            d.swap(d.plan, {}, templates)  # the same scenarios; a changed template catalogue takes over
            log.info("scenarios reloaded: nothing changed", who=who)
            return ReloadResult(True)
        engines = {}
        report = None
        try:
            for name, unit in d.units.items():
                engines[name] = d.new_engine(plan, unit.engine.reference, name)
                report = transfer_state(unit.engine, engines[name])
        except BindError as e:
            return self._refuse(who, str(e), exc_info=e if isinstance(e, BuildError) else None)
        except Exception as e:  # refused before ``swap``: the running engines go on
            return self._refuse(who, _internal(d.config.scenarios, "handing the running state to", e), exc_info=e)
        d.swap(plan, engines, templates)
        self._audit(records)  # the new scenarios run; a full disk must not stop the daemon over its audit trail
        self.reloads += 1
        result = ReloadResult(
            True,
            published=[r.scenario for r in records if r.action == "publish"],
            changed=[r.scenario for r in records if r.action == "change"],
            withdrawn=[r.scenario for r in records if r.action == "withdraw"],
        )
        log.info("scenarios reloaded", who=who, published=result.published, changed=result.changed,
                 withdrawn=result.withdrawn, state_kept=report.kept if report else [],
                 state_dropped=report.pattern_dropped if report else [])
        for scenario, term in report.calendar_started if report else ():
            # a calendar aggregate the running engines did not keep: it counts from now on, so its
            # periods read low until they have run whole (LANGUAGE.md §9.2)
            log.info("calendar term starts empty", scenario=scenario, term=term)
        for scenario, term, kept, depth in report.calendar_deepened if report else ():
            log_deepened(scenario, term, kept, depth)
        return result

    def _refuse(self, who: str, error: str, exc_info: BaseException | None = None) -> ReloadResult:
        self.refused += 1
        log.error("scenario reload refused; the running scenarios go on", who=who, error=error,
                  exc_info=exc_info)
        self._audit([AuditRecord(wall_ms(), "refuse", "", "", who, detail=error)])
        return ReloadResult(False, error=error)

    def _audit(self, records: list[AuditRecord]) -> None:
        """Append to the audit log; a full or broken disk is logged, never the end of the daemon."""
        try:
            self.audit.write(records)
        except OSError as e:
            log.error("the audit log could not be written; the scenarios in force are as logged above",
                      error=str(e), path=str(self.audit.path))

    async def watch(self) -> None:
        """Reload when the folder's content changes (polling)."""
        while True:
            await anyio.sleep(self.poll_s)
            try:
                seen = folder_fingerprint(self.daemon.config.scenarios)
            except OSError as e:  # the folder is being replaced, or gone: the running scenarios go on
                log.warning("scenarios folder unreadable; the running scenarios go on", error=str(e))
                continue
            if seen != self._seen:
                self.reload("watch")
