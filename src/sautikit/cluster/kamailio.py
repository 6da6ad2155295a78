"""A Kamailio configuration that puts one SIP address in front of several nodes.

:func:`kamailio_config` writes what ``sautikit kamailio-config`` prints: a ``kamailio.cfg``
for Kamailio 5.6 (Debian ``kamailio``) and the ``dispatcher.list`` it reads. Kamailio
only routes signalling; RTP flows between the node and the far end.

- **dispatcher** spreads new requests over the nodes (round-robin: every node verifies
  every node's digest nonces and reads the same registrations, so any node may take any
  request), probes each node with OPTIONS every ``ping_interval`` seconds and stops
  sending to one that does not answer (or answers 503 while it drains), and on a 408/5xx
  or a timeout tries the next node;
- **record-route** keeps Kamailio in the path of every dialog it set up, so in-dialog
  requests reach the node that holds the call;
- **Path** (RFC 3327) on REGISTER: the node stores it with the binding and calls the
  phone through Kamailio, from where the phone registered (NAT pinholes stay valid);
- requests from a node (calls to phones registered through Kamailio carry its Path as a
  Route) are relayed on, record-routed.

``event_route[dispatcher:dst-down]`` / ``dst-up`` log each node that goes away or comes
back (``sautikit node down: sip:…``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KamailioConfig", "kamailio_config", "parse_address"]

DISPATCHER_SET = 1
MODULES_DIR = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"


def parse_address(text: str, default_port: int = 5080) -> tuple[str, int]:
    """``host[:port]`` as (host, port); raises ``ValueError`` for anything else."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        host, port_text = text.strip(), str(default_port)
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"not host:port: {text!r}")
    return host, int(port_text)


@dataclass(frozen=True)
class KamailioConfig:
    """The two files: ``kamailio.cfg`` and the ``dispatcher.list`` it names."""

    cfg: str
    dispatcher_list: str


def kamailio_config(
    nodes: Sequence[tuple[str, int]],
    *,
    listen: tuple[str, int],
    advertise: str | None = None,
    dispatcher_list_path: Path,
    ping_interval: int = 2,
    children: int = 2,
    modules_dir: str = MODULES_DIR,
) -> KamailioConfig:
    """The configuration for Kamailio on ``listen`` in front of ``nodes`` (their SIP
    addresses); ``advertise`` is the address Kamailio names in Record-Route and Path
    (default: the listen host), ``dispatcher_list_path`` where the list will be written."""
    if not nodes:
        raise ValueError("name at least one node")
    if ping_interval < 1:
        raise ValueError("the OPTIONS ping interval is at least one second")
    host, port = listen
    advertised = f" advertise {advertise}:{port}" if advertise else ""
    destinations = "".join(
        f"{DISPATCHER_SET} sip:{node_host}:{node_port} 0 0 duid=node{index}\n"
        for index, (node_host, node_port) in enumerate(nodes, start=1)
    )
    cfg = f"""#!KAMAILIO
# Written by `sautikit kamailio-config`: Kamailio in front of {len(nodes)} Sautikit nodes.

debug=2
log_stderror=yes
memdbg=5
memlog=5
children={children}
auto_aliases=no
listen=udp:{host}:{port}{advertised}
listen=tcp:{host}:{port}{advertised}

mpath="{modules_dir}"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "path.so"
loadmodule "dispatcher.so"

modparam("rr", "enable_full_lr", 1)
modparam("rr", "append_fromtag", 1)
modparam("path", "use_received", 1)
modparam("dispatcher", "list_file", "{dispatcher_list_path}")
modparam("dispatcher", "flags", 2)
modparam("dispatcher", "ds_ping_method", "OPTIONS")
modparam("dispatcher", "ds_ping_from", "sip:kamailio@{advertise or host}")
modparam("dispatcher", "ds_ping_interval", {ping_interval})
modparam("dispatcher", "ds_probing_mode", 1)
modparam("dispatcher", "ds_probing_threshold", 1)
modparam("dispatcher", "ds_inactive_threshold", 1)
modparam("dispatcher", "ds_ping_reply_codes", "class=2")
modparam("tm", "fr_timer", 5000)
modparam("tm", "fr_inv_timer", 60000)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (!sanity_check()) {{
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            route(RELAY);
        }}
        exit;
    }}
    if (has_totag()) {{
        # In a dialog: follow the Record-Route set up by the initial request.
        if (loose_route()) {{
            route(RELAY);
        }}
        if (is_method("ACK") && t_check_trans()) {{
            route(RELAY);
        }}
        sl_send_reply("404", "Not Here");
        exit;
    }}
    t_check_trans();
    if (loose_route()) {{
        # A node calling a phone registered through us (its Path is the Route).
        record_route();
        route(RELAY);
    }}
    if (ds_is_from_list("{DISPATCHER_SET}")) {{
        # A node's own request to the outside world (no Route through us): pass it on.
        record_route();
        route(RELAY);
    }}
    if (is_method("REGISTER")) {{
        add_path_received();
    }} else {{
        record_route();
    }}
    if (!ds_select_dst("{DISPATCHER_SET}", "4")) {{
        sl_send_reply("503", "No Sautikit Node Available");
        exit;
    }}
    t_on_failure("NEXT_NODE");
    route(RELAY);
}}

route[RELAY] {{
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}

failure_route[NEXT_NODE] {{
    if (t_is_canceled()) {{
        exit;
    }}
    if (t_check_status("408|500|503") || t_branch_timeout()) {{
        ds_mark_dst("ip");
        if (ds_next_dst()) {{
            t_on_failure("NEXT_NODE");
            t_relay();
        }}
    }}
}}

event_route[dispatcher:dst-down] {{
    xlog("L_WARN", "sautikit node down: $ru\\n");
}}

event_route[dispatcher:dst-up] {{
    xlog("L_WARN", "sautikit node up: $ru\\n");
}}
"""
    return KamailioConfig(cfg=cfg, dispatcher_list=destinations)
