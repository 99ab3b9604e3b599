"""Translation of pre-PostgreSQL-12/13 replication settings to PostgreSQL 15.

Old tutorials (and old runbooks) configure streaming replication with keys
that PostgreSQL 15 rejects:

* ``wal_keep_segments = N`` (removed in 13) becomes ``wal_keep_size = N ×
  wal_segment_size``;
* ``recovery.conf`` (removed in 12; its presence now stops the server from
  starting) becomes ordinary settings plus a signal file: ``standby_mode =
  on`` becomes ``standby.signal``, ``trigger_file`` becomes
  ``promote_trigger_file``, ``primary_conninfo``, ``primary_slot_name``,
  ``restore_command``, ``recovery_target_*`` and friends keep their names.

Every translation emits a :class:`LegacySettingWarning` that says what was
replaced by what, and the node writes the same notice into its log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from walsim.core.errors import ClusterError


class LegacySettingWarning(UserWarning):
    """A legacy key was translated (the message says into what)."""


#: recovery.conf keys that are ordinary settings in PostgreSQL 12+ (same name)
RECOVERY_SETTINGS = frozenset({
    "primary_conninfo", "primary_slot_name", "restore_command", "archive_cleanup_command",
    "recovery_end_command", "recovery_min_apply_delay", "recovery_target", "recovery_target_name",
    "recovery_target_time", "recovery_target_xid", "recovery_target_lsn",
    "recovery_target_inclusive", "recovery_target_timeline", "recovery_target_action",
    "promote_trigger_file",
})
RENAMED = {"trigger_file": "promote_trigger_file"}
_TRUE = {"on", "true", "yes", "1", "t", "y"}
_FALSE = {"off", "false", "no", "0", "f", "n"}

_LINE = re.compile(r"""^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=?\s*(?:'((?:[^'\\]|''|\\.)*)'|([^\s#']*))\s*(?:\#.*)?$""")


def parse_conf(text: str, *, source: str = "configuration") -> dict[str, str]:
    """Parse postgresql.conf / recovery.conf syntax into ``{key: value}`` (last wins)."""
    result: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise ClusterError(f"{source}, line {lineno}: cannot parse {raw!r} (expected key = value)")
        key, quoted, bare = m.group(1).lower(), m.group(2), m.group(3)
        if quoted is not None:
            value = re.sub(r"''|\\(.)", lambda mm: "'" if mm.group(0) == "''" else mm.group(1), quoted)
        else:
            value = bare
        result[key] = value
    return result


def translate_settings(settings: Mapping[str, object], wal_segment_bytes: int = 16 << 20
                       ) -> tuple[dict[str, object], list[str]]:
    """Replace legacy postgresql.conf keys; returns (new settings, notices)."""
    out: dict[str, object] = {}
    notices: list[str] = []
    for key, value in settings.items():
        if key == "wal_keep_segments":
            try:
                n = int(str(value))
            except ValueError:
                raise ClusterError(f"wal_keep_segments = {value!r} is not an integer") from None
            mb = n * wal_segment_bytes // (1 << 20)
            out["wal_keep_size"] = f"{mb}MB"
            notices.append(f"wal_keep_segments = {n} was removed in PostgreSQL 13; "
                           f"translated to wal_keep_size = '{mb}MB' ({n} x "
                           f"{wal_segment_bytes // (1 << 20)}MB segments)")
        elif key in RENAMED:
            out[RENAMED[key]] = value
            notices.append(f"{key} is now {RENAMED[key]}; translated")
        elif key == "standby_mode":
            raise ClusterError("standby_mode is a recovery.conf key: pass it in recovery_conf= "
                               "(it becomes standby.signal), not in settings")
        else:
            out[key] = value
    return out, notices


def translate_recovery_conf(conf: str | Mapping[str, object], *, source: str = "recovery.conf"
                            ) -> tuple[dict[str, object], str | None, list[str]]:
    """Translate recovery.conf contents.

    Returns ``(settings, signal, notices)`` where ``signal`` is
    ``"standby.signal"``, ``"recovery.signal"`` or None (no recovery at all).
    """
    items = parse_conf(conf, source=source) if isinstance(conf, str) else dict(conf)
    settings: dict[str, object] = {}
    notices: list[str] = []
    standby = False
    for key, value in items.items():
        key = key.lower()
        if key == "standby_mode":
            text = str(value).lower() if not isinstance(value, bool) else ("on" if value else "off")
            if text in _TRUE:
                standby = True
            elif text not in _FALSE:
                raise ClusterError(f"{source}: standby_mode = {value!r} is not a boolean")
            notices.append(f"{source}: standby_mode = {value} is replaced by the file "
                           f"{'standby.signal' if standby else 'recovery.signal'} (PostgreSQL 12+)")
        elif key in RENAMED:
            settings[RENAMED[key]] = value
            notices.append(f"{source}: {key} is renamed {RENAMED[key]} in PostgreSQL 12+; translated")
        elif key in RECOVERY_SETTINGS:
            settings[key] = value
        else:
            raise ClusterError(f"{source}: unknown recovery.conf key {key!r} "
                               f"(known: standby_mode, trigger_file, {', '.join(sorted(RECOVERY_SETTINGS))})")
    if standby:
        signal: str | None = "standby.signal"
    elif "restore_command" in settings or any(k.startswith("recovery_target") for k in settings):
        signal = "recovery.signal"
    else:
        signal = None
    notices.append(f"{source}: recovery.conf is not supported since PostgreSQL 12; its settings "
                   f"({', '.join(sorted(settings)) or 'none'}) go to postgresql.conf"
                   + (f" and {signal} is created" if signal else ""))
    return settings, signal, notices
