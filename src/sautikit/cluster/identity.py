"""A node's id: given by the operator, or kept with the node's data.

The id names the node in ``calls.owner`` and in its lease row. The bare host name is a
poor default: a replaced container gets a new one, and two processes on one host share
it. So without ``SAUTIKIT_NODE_ID`` a node makes ``<host name>-<8 hex digits>`` at its
first start and keeps it in ``data_dir/node-id``: a restart on the same volume is the
same node (and closes its own calls at once); a node that comes back without its volume
is a new node, and the calls of the old one are closed by the lease (cluster.lease).
"""

from __future__ import annotations

import re
import secrets
import socket
from pathlib import Path

from sautikit.config import ConfigError, Settings

__all__ = ["NODE_ID_FILE", "resolve_node_id", "with_node_id"]

NODE_ID_FILE = "node-id"
_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")


def resolve_node_id(settings: Settings) -> str:
    """The configured id, else the one kept in ``data_dir`` (made on first use)."""
    if settings.node_id:
        return settings.node_id
    kept = Path(settings.data_dir) / NODE_ID_FILE
    if kept.exists():
        found = kept.read_text().strip()
        if not _VALID.fullmatch(found):
            raise ConfigError(f"{kept} holds no valid node id: delete it to make a new one")
        return found
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:80].strip("-.") or "node"
    made = f"{host}-{secrets.token_hex(4)}"
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(made + "\n")
    return made


def with_node_id(settings: Settings) -> Settings:
    """``settings`` with ``node_id`` filled in (see :func:`resolve_node_id`)."""
    if settings.node_id:
        return settings
    return settings.model_copy(update={"node_id": resolve_node_id(settings)})
