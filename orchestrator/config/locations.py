"""Where things are: the data dir, the config file and the API address, from the environment
and the command line."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from orchestrator.config.schema import CONFIG_FILE_NAME

__all__ = [
    "ENV_ADDR",
    "ENV_CONFIG",
    "ENV_DATA_DIR",
    "config_path",
    "data_dir_from_env",
    "is_loopback",
    "parse_address",
]

ENV_DATA_DIR: Final = "ORCHESTRATOR_DATA_DIR"
ENV_ADDR: Final = "ORCHESTRATOR_ADDR"
ENV_CONFIG: Final = "ORCHESTRATOR_CONFIG"


def data_dir_from_env(env: Mapping[str, str] = os.environ) -> Path:
    """``$ORCHESTRATOR_DATA_DIR``, else ``$XDG_DATA_HOME/orchestrator`` (when absolute, as
    the XDG spec asks), else ``~/.local/share/orchestrator``. Always absolute."""
    explicit = env.get(ENV_DATA_DIR, "").strip()
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = env.get("XDG_DATA_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "orchestrator"
    return Path.home() / ".local" / "share" / "orchestrator"


def config_path(
    path: Path | None = None, *, env: Mapping[str, str] = os.environ
) -> tuple[Path, bool]:
    """The config file to read and whether it was named explicitly (then it must exist)."""
    if path is not None:
        return path.expanduser().absolute(), True
    explicit = env.get(ENV_CONFIG, "").strip()
    if explicit:
        return Path(explicit).expanduser().absolute(), True
    return data_dir_from_env(env) / CONFIG_FILE_NAME, False


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` → (host, port). Raises ValueError saying what is wrong."""
    value = text.strip()
    if value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
        if not sep:
            raise ValueError(f'"{text}" is not host:port (e.g. "127.0.0.1:8731" or "[::1]:8731")')
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f'"{host}" in "{text}" is not an IPv6 address') from None
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or not host or ":" in host or any(c.isspace() for c in host):
            raise ValueError(f'"{text}" is not host:port (e.g. "127.0.0.1:8731" or "[::1]:8731")')
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f'"{text}": the port must be a number from 0 to 65535')
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere
