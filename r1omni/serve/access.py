"""Who may reach `r1omni serve`: this machine only, unless the operator asks for a login or says
knowingly that none is wanted; and what the page tells visitors about the model (its name, not
where it lies on the server's disk)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from r1omni.errors import R1OmniError

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def check_exposure(host: str, has_login: bool, no_auth: bool) -> None:
    """Refuse to listen beyond loopback without a login, unless `--no-auth` says so knowingly."""
    if has_login and no_auth:
        raise R1OmniError("give --auth or --no-auth, not both")
    if not is_loopback(host) and not has_login and not no_auth:
        raise R1OmniError(f"--host {host} opens the page beyond this machine: add --auth FILE (a login) or, "
                          "knowingly, --no-auth")


def read_logins(path: str | Path) -> list[tuple[str, str]]:
    """(user, password) pairs from a file of ``user:password`` lines (blank lines and ``#``
    comments skipped); errors name the line, never echo a password."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise R1OmniError(f"--auth {path}: cannot be read ({getattr(err, 'strerror', None) or err})") from None
    logins = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, colon, password = line.partition(":")
        if not colon or not user.strip() or not password:
            raise R1OmniError(f"--auth {path}:{number}: not user:password (both non-empty)")
        logins.append((user.strip(), password))
    if not logins:
        raise R1OmniError(f"--auth {path}: holds no user:password line")
    return logins


def model_label(path: str | Path) -> str:
    """The model's name for the page: its folder's name, with the run's for a ``final`` or
    ``checkpoint-N`` folder (``grpo/final``), never the absolute path."""
    path = Path(path).resolve()
    generic = path.name == "final" or path.name.startswith("checkpoint-")
    return f"{path.parent.name}/{path.name}" if generic else path.name
