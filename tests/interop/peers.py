"""The interop matrix's peers as adapters: one phone API over SIPp, baresip and linphone-cli.

A matrix test is one body per feature: it registers a :class:`Phone` with the login the
credentials API gave, hands it a script of :class:`Step` s (dial, answer, key, hold, resume,
transfer, hang up, wait for our BYE) and checks what Sautikit did. Each adapter carries the
script out the way its peer can: linphonec and baresip are driven live from their own
command interfaces (linphonec's command line, baresip's ``ctrl_tcp`` and ``cons`` modules)
and each step waits for the peer to report its outcome; SIPp gets the script compiled into
one scenario, which checks each of our answers itself.

A step that a peer cannot take from its own CLI raises :class:`Unsupported` (the matrix
table in docs/pbx.md says which and why).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tests.baresip import Baresip
from tests.linphone import Linphone, tls_srtp_config
from tests.sipp import Sipp, free_port
from tests.tls_certs import tls_bridge

__all__ = [
    "AWAIT_BYE",
    "HANG_UP",
    "HOLD",
    "RESUME",
    "Answer",
    "BaresipPhone",
    "Dial",
    "Dtmf",
    "LinphonePhone",
    "Login",
    "Phone",
    "Server",
    "SippPhone",
    "Step",
    "Transfer",
    "Unsupported",
]


@dataclass(frozen=True)
class Login:
    """What ``POST /v1/numbers/{id}/sip-credentials`` answered."""

    username: str
    password: str
    identity: str


@dataclass(frozen=True)
class Server:
    """Where ``sautikit serve`` listens, and the CA its TLS certificate chains to."""

    host: str
    port: int
    tls_port: int
    ca: Path

    def uri(self, user: str, *, tls: bool = False) -> str:
        if tls:  # the certificate's name, as a phone is told to use it
            return f"sip:{user}@localhost:{self.tls_port};transport=tls"
        return f"sip:{user}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Dial:
    """Call ``to`` (a number of the server, or a SIP URI) and wait until it is answered."""

    to: str


@dataclass(frozen=True)
class Answer:
    """Wait for the server's call and answer it."""


@dataclass(frozen=True)
class Dtmf:
    """Press ``digit`` (RFC 4733), again each second until the server hangs up (at most
    ``times``): a key pressed while the server is still joining the call is not lost."""

    digit: str
    times: int = 3


@dataclass(frozen=True)
class Hold:
    """Put the call on hold (re-INVITE a=sendonly); done when the server agreed."""


@dataclass(frozen=True)
class Resume:
    """Take it off hold (re-INVITE a=sendrecv); done when the server agreed."""


@dataclass(frozen=True)
class Transfer:
    """Blind transfer (REFER) of the other party to ``to``; done once the phone has left
    the call (it hangs up when the NOTIFY says 200, or gets our BYE)."""

    to: str


@dataclass(frozen=True)
class HangUp:
    """Hang up (BYE) and wait for the server's 200."""


@dataclass(frozen=True)
class AwaitBye:
    """Wait for the server to hang up."""


Step = Dial | Answer | Dtmf | Hold | Resume | Transfer | HangUp | AwaitBye
HOLD, RESUME, HANG_UP, AWAIT_BYE = Hold(), Resume(), HangUp(), AwaitBye()


class Unsupported(Exception):
    """The peer cannot take this step (or use this transport) from its own interface."""


class Phone(Protocol):
    name: str
    #: Can it insist on SRTP (SDES) for its calls?
    srtp: bool

    async def register(self, login: Login, *, tls: bool = False) -> None:
        """Register with ``login`` (over TLS, SRTP mandatory, with ``tls``); returns once
        the phone saw the 200."""
        ...

    async def begin(self, steps: Sequence[Step]) -> Awaitable[None]:
        """Start carrying out ``steps``; returns once the phone is ready for a call to it,
        with an awaitable that ends when the script has (raising if a step failed)."""
        ...

    async def close(self) -> str:
        """Stop the phone; answers its log."""
        ...


# --- linphone-cli ---------------------------------------------------------------------------

_LP_STATE = r"CallSession \[[^]]+\] moving from state \w+ to "


class LinphonePhone:
    """linphonec driven through its command line, as a user would type (``-d 6``: its call
    states are what each step waits for)."""

    name = "linphone"
    srtp = True

    def __init__(self, folder: Path, server: Server) -> None:
        self.folder = folder
        self.server = server
        self.tls = False
        self._phone: Linphone | None = None

    @property
    def phone(self) -> Linphone:
        assert self._phone is not None, "register first"
        return self._phone

    async def register(self, login: Login, *, tls: bool = False) -> None:
        self.tls = tls
        config = tls_srtp_config(self.server.ca) if tls else ""
        self._phone = Linphone(self.folder, config + f"[rtp]\naudio_rtp_port={free_port()}\n")
        await self.phone.start(debug=True)
        await self.phone.command("soundcard use files")
        proxy = (
            f"<sip:localhost:{self.server.tls_port};transport=tls>"
            if tls
            else f"sip:{self.server.host}:{self.server.port}"
        )
        await self.phone.command(f"register {login.identity} {proxy} {login.password}")
        await self.phone.expect(r"to \[LinphoneRegistrationOk\]")

    async def begin(self, steps: Sequence[Step]) -> Awaitable[None]:
        return asyncio.ensure_future(self._run(steps))

    async def _run(self, steps: Sequence[Step]) -> None:
        phone = self.phone
        for step in steps:
            match step:
                case Dial(to=to):
                    await phone.command(f"call {self._uri(to)}")
                    await phone.expect(_LP_STATE + "LinphoneCallStreamsRunning", within=30)
                case Answer():
                    await phone.expect(_LP_STATE + "LinphoneCallIncomingReceived", within=30)
                    await phone.command("answer")
                    await phone.expect(_LP_STATE + "LinphoneCallStreamsRunning", within=30)
                case Dtmf(digit=digit, times=times):
                    for _ in range(times):
                        await phone.command(digit)  # linphonec sends a line of keys as DTMF
                        with contextlib.suppress(AssertionError):
                            await phone.expect(_LP_STATE + "LinphoneCallEnd", within=1)
                            break
                    else:
                        await phone.expect(_LP_STATE + "LinphoneCallEnd", within=30)
                case Hold():
                    await phone.command("pause")
                    await phone.expect(_LP_STATE + "LinphoneCallPaused")
                case Resume():
                    await phone.command("resume")
                    await phone.expect(_LP_STATE + "LinphoneCallStreamsRunning")
                case Transfer(to=to):
                    await phone.command(f"transfer {self._uri(to)}")
                    await phone.expect(_LP_STATE + "LinphoneCallEnd", within=40)
                case HangUp():
                    await phone.command("terminate")
                    await phone.expect(_LP_STATE + "LinphoneCallEnd")
                case AwaitBye():
                    await phone.expect(_LP_STATE + "LinphoneCallEnd", within=30)

    def _uri(self, to: str) -> str:
        return to if to.startswith("sip") else self.server.uri(to, tls=self.tls)

    async def close(self) -> str:
        return await self._phone.stop() if self._phone is not None else ""


# --- baresip --------------------------------------------------------------------------------


class BaresipPhone:
    """baresip 1.0 driven through ``ctrl_tcp`` (commands in, call events out) and ``cons``
    (key presses: DTMF has no long command in 1.0)."""

    name = "baresip"
    srtp = True

    def __init__(self, folder: Path, server: Server, voice: Path) -> None:
        self.folder = folder
        self.server = server
        self.voice = voice
        self.tls = False
        self._phone: Baresip | None = None

    @property
    def phone(self) -> Baresip:
        assert self._phone is not None, "register first"
        return self._phone

    async def register(self, login: Login, *, tls: bool = False) -> None:
        self.tls = tls
        low = free_port()
        # baresip 1.0 looks names up in DNS only (not /etc/hosts): it is given the address,
        # which the certificate names too.
        host, port = self.server.host, self.server.tls_port if tls else self.server.port
        self._phone = Baresip(
            self.folder,
            login.username,
            self.voice,
            (low, low + 40),
            register=(host, port, login.password),
            transport="tls" if tls else "udp",
            control=True,
            ca=self.server.ca if tls else None,
            srtp="mandatory" if tls else None,
        )
        await self.phone.start(seconds=600)
        await self.phone.wait_registered_itself()

    async def begin(self, steps: Sequence[Step]) -> Awaitable[None]:
        return asyncio.ensure_future(self._run(steps))

    async def _run(self, steps: Sequence[Step]) -> None:
        phone = self.phone
        for step in steps:
            match step:
                case Dial(to=to):
                    await phone.control("dial", self._uri(to))
                    await phone.expect_event("CALL_ESTABLISHED", within=30)
                case Answer():  # the account answers by itself (answermode=auto)
                    await phone.expect_event("CALL_ESTABLISHED", within=30)
                case Dtmf(digit=digit, times=times):
                    for _ in range(times):
                        phone.press(digit)
                        with contextlib.suppress(AssertionError):
                            await phone.expect_event("CALL_CLOSED", within=1)
                            break
                    else:
                        await phone.expect_event("CALL_CLOSED", within=30)
                case Hold():
                    await phone.control("hold")
                    await phone.expect_event("CALL_REMOTE_SDP", param="answer")
                case Resume():
                    await phone.control("resume")
                    await phone.expect_event("CALL_REMOTE_SDP", param="answer")
                case Transfer(to=to):
                    await phone.control("transfer", self._uri(to))
                    await phone.expect_event("CALL_CLOSED", within=40)
                case HangUp():
                    await phone.control("hangup")
                    await phone.expect_event("CALL_CLOSED")
                case AwaitBye():
                    await phone.expect_event("CALL_CLOSED", within=30)

    def _uri(self, to: str) -> str:
        if to.startswith("sip"):
            return to
        if self.tls:
            return f"sip:{to}@{self.server.host}:{self.server.tls_port};transport=tls"
        return self.server.uri(to)

    async def close(self) -> str:
        return await self._phone.quit() if self._phone is not None else ""


# --- SIPp -----------------------------------------------------------------------------------

_PCAP = Path("/usr/share/sip-tester")


class SippPhone:
    """SIPp (Debian sip-tester 3.6.1): REGISTER is one scenario, each script another,
    compiled from the steps (:class:`_Scenario`); every answer of ours is checked in it.
    Debian's SIPp has neither TLS nor SRTP: over ``tls`` it speaks TCP into a ``socat`` that
    carries it over verified TLS (Sautikit sees a TLS client), and it cannot do SRTP."""

    name = "sipp"
    srtp = False

    def __init__(self, folder: Path, server: Server) -> None:
        self.folder = folder
        self.server = server
        self.port = free_port()
        self.login: Login | None = None
        self._bridge: contextlib.AsyncExitStack | None = None
        self._remote = (server.host, server.port)
        self._transport = "u1"
        self._runs: list[Sipp] = []

    async def register(self, login: Login, *, tls: bool = False) -> None:
        self.login = login
        if tls:
            self._bridge = contextlib.AsyncExitStack()
            port = await self._bridge.enter_async_context(
                tls_bridge(self.server.ca, self.server.tls_port)
            )
            self._remote, self._transport = ("127.0.0.1", port), "t1"
        result = await self._sipp(_register_scenario(login)).run()
        assert result.returncode == 0, result.explain()

    def _sipp(self, scenario: str, timeout: float = 30) -> Sipp:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"scenario-{len(self._runs)}.xml"
        path.write_text(scenario)
        sipp = Sipp(
            scenario=path,
            remote=self._remote,
            port=self.port if self._transport == "u1" else None,
            transport=self._transport,
            timeout=timeout,
            workdir=self.folder,
            extra=["-trace_msg"],
        )
        self._runs.append(sipp)
        return sipp

    async def begin(self, steps: Sequence[Step]) -> Awaitable[None]:
        assert self.login is not None, "register first"
        sipp = self._sipp(_Scenario(self.login).compile(steps), timeout=60)
        await sipp.start()

        async def finished() -> None:
            result = await sipp.wait()
            assert result.returncode == 0, result.explain() + self._messages()[-6000:]

        return asyncio.ensure_future(finished())

    def _messages(self) -> str:
        """What SIPp sent and received (its ``-trace_msg`` logs)."""
        logs = sorted(self.folder.glob("*_messages.log"))
        return "\n".join(path.read_text(errors="replace") for path in logs)

    async def close(self) -> str:
        for sipp in self._runs:
            await sipp.stop()
        if self._bridge is not None:
            await self._bridge.aclose()
        return "\n".join(path.read_text(errors="replace") for path in self.folder.glob("*.log"))


def _register_scenario(login: Login) -> str:
    request = """
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{user}@[remote_ip]>
      Call-ID: [call_id]
      CSeq: {cseq} REGISTER
      Contact: <sip:{user}@[local_ip]:[local_port];transport=[transport]>
      {auth}Expires: 300
      Max-Forwards: 70
      Content-Length: 0
"""
    auth = f"[authentication username={login.username} password={login.password}]\n      "
    first = request.format(user=login.username, cseq=1, auth="")
    second = request.format(user=login.username, cseq=2, auth=auth)
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register with digest">
  <send retrans="500"><![CDATA[{first}
    ]]></send>
  <recv response="401" auth="true"/>
  <send retrans="500"><![CDATA[{second}
    ]]></send>
  <recv response="200"/>
</scenario>
"""


class _Scenario:
    """A SIPp scenario built from steps. SIPp is the caller (``Dial``: INVITE, 407, INVITE
    with digest) or the callee (``Answer``); the in-dialog requests it sends then take
    From/To/CSeq from that role."""

    def __init__(self, login: Login) -> None:
        self.login = login
        self.user = login.username
        self.parts: list[str] = []
        self.cseq = 0
        self.offers = 0
        self.checks: list[str] = []
        self.role = ""
        self.callee = ""

    def compile(self, steps: Sequence[Step]) -> str:
        for step in steps:
            match step:
                case Dial(to=to):
                    self._dial(to)
                case Answer():
                    self._answer()
                case Dtmf(digit=digit, times=times):
                    self._dtmf(digit, times)
                case Hold():
                    self._reinvite("sendonly", "held", expect=r"a=(recvonly|inactive)")
                case Resume():
                    self._reinvite("sendrecv", "resumed", refuse=r"a=(recvonly|inactive|sendonly)")
                case Transfer(to=to):
                    self._transfer(to)
                case HangUp():
                    self._send(self._request("BYE"))
                    self.parts.append('<recv response="200" crlf="true"/>')
                case AwaitBye():
                    self._await_bye()
        references = f'<Reference variables="{",".join(self.checks)}"/>' if self.checks else ""
        body = "\n  ".join(self.parts)
        return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="interop matrix script">
  {body}
  {references}
</scenario>
"""

    # -- pieces ------------------------------------------------------------------------------

    def _check(self, name: str, regexp: str, *, where: str = "body", inverse: bool = False) -> str:
        self.checks.append(name)
        check = 'check_it_inverse="true"' if inverse else 'check_it="true"'
        return (
            f'<ereg regexp="{html.escape(regexp)}" search_in="{where}" {check} assign_to="{name}"/>'
        )

    def _header_check(self, name: str, header: str, regexp: str) -> str:
        return self._check(name, regexp, where="hdr").replace(
            'search_in="hdr"', f'search_in="hdr" header="{header}"'
        )

    def _send(self, message: str, retrans: bool = True) -> None:
        attribute = ' retrans="500"' if retrans else ""
        self.parts.append(f"<send{attribute}><![CDATA[\n{message}\n    ]]></send>")

    def _sdp(self, direction: str) -> str:
        self.offers += 1
        return f"""
      v=0
      o=sipp 53655765 {self.offers} IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a={direction}"""

    def _headers(self, method: str, cseq: int | None = None) -> str:
        """Via to Max-Forwards of a request of ours; a new CSeq unless given (an ACK's)."""
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        if self.role == "caller":
            ends = (
                f"From: <sip:{self.user}@[remote_ip]>;tag=[pid]SIPpTag00[call_number]\n"
                f"      To: <sip:{self.callee}@[remote_ip]:[remote_port]>[peer_tag_param]"
            )
        else:
            ends = "From: [$local];tag=[pid]SIPpTag01[call_number]\n      To: [$remote]"
        return f"""      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      {ends}
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Contact: <sip:{self.user}@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70"""

    def _request(self, method: str, body: str = "", extra: str = "") -> str:
        content = "Content-Type: application/sdp\n      " if body else ""
        extra = f"{extra}\n      " if extra else ""
        return (
            f"      {method} [$target] SIP/2.0\n{self._headers(method)}\n"
            f"      {extra}{content}Content-Length: [len]\n{body}"
        )

    def _ack(self) -> str:
        """The ACK of our last INVITE's 2xx (its CSeq, to the far end's Contact)."""
        headers = self._headers("ACK", cseq=self.cseq)
        return f"      ACK [$target] SIP/2.0\n{headers}\n      Content-Length: 0\n"

    def _dial(self, to: str) -> None:
        self.role, self.callee = "caller", to
        # SIPp digests the URI it sends to, which the server checks against the
        # Request-URI: so the INVITE goes to sip:remote_ip:remote_port (the To names whom).
        self._send(self._dial_invite(auth=False))
        self.parts.append('<recv response="100" optional="true"/>')
        self.parts.append('<recv response="407" auth="true"/>')
        refused = self._headers("ACK", cseq=self.cseq).replace("[routes]\n", "")
        self._send(
            f"      ACK sip:[remote_ip]:[remote_port] SIP/2.0\n{refused}\n"
            "      Content-Length: 0\n",
            retrans=False,
        )
        self._send(self._dial_invite(auth=True))
        self.parts.append('<recv response="100" optional="true"/>')
        self.parts.append('<recv response="180" optional="true"/>')
        self.parts.append('<recv response="183" optional="true"/>')
        contact = self._header_check("target", "Contact:", r"sip:[^>;]*")
        self.parts.append(f'<recv response="200" rrs="true"><action>{contact}</action></recv>')
        self._send(self._ack(), retrans=False)

    def _dial_invite(self, *, auth: bool) -> str:
        # Out of any dialog: no To tag, even on the retry after the 407.
        headers = self._headers("INVITE").replace("[peer_tag_param]", "")
        login = self.login
        credentials = (
            f"[authentication username={login.username} password={login.password}]\n      "
            if auth
            else ""
        )
        return (
            f"      INVITE sip:[remote_ip]:[remote_port] SIP/2.0\n{headers}\n"
            f"      {credentials}Content-Type: application/sdp\n      Content-Length: [len]\n"
            f"{self._sdp('sendrecv')}"
        ).replace("[routes]\n", "")

    def _answer(self) -> None:
        self.role = "callee"
        peer = self._header_check("remote", "From:", ".*")
        own = self._header_check("local", "To:", ".*")
        target = self._header_check("target", "Contact:", r"sip:[^>;]*")
        self.parts.append(
            f'<recv request="INVITE" crlf="true" rrs="true"><action>{peer}{own}{target}'
            "</action></recv>"
        )
        self._send(
            """      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
""",
            retrans=False,
        )
        self._send(
            f"""      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:{self.user}@[local_ip]:[local_port];transport=[transport]>
      Allow: INVITE, ACK, BYE, CANCEL, REFER, NOTIFY
      Content-Type: application/sdp
      Content-Length: [len]
{self._sdp("sendrecv")}""",
        )  # re-sent until the ACK, as a UAS does over UDP (RFC 3261 §13.3.1.4)
        self.parts.append('<recv request="ACK" crlf="true"/>')

    def _dtmf(self, digit: str, times: int) -> None:
        name = {"#": "pound", "*": "star"}.get(digit, digit)
        pcap = _PCAP / f"dtmf_2833_{name}.pcap"
        for _ in range(times):
            self.parts.append(f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
            self.parts.append('<pause milliseconds="1000"/>')
        self._await_bye()

    def _reinvite(self, direction: str, name: str, *, expect: str = "", refuse: str = "") -> None:
        self._send(self._request("INVITE", self._sdp(direction)))
        self.parts.append('<recv response="100" optional="true"/>')
        check = self._check(name, expect) if expect else self._check(name, refuse, inverse=True)
        self.parts.append(f'<recv response="200"><action>{check}</action></recv>')
        self._send(self._ack(), retrans=False)

    def _transfer(self, to: str) -> None:
        self._send(
            self._request(
                "REFER",
                extra=f"Refer-To: <sip:{to}@[remote_ip]>\n"
                f"      Referred-By: <sip:{self.user}@[local_ip]>",
            )
        )
        # The first NOTIFY may overtake the 202 (RFC 6665 §4.1.2.4): either order. Its 200
        # is built from its own headers, since the 202 may be the last message seen.
        self.parts.append('<recv response="202" optional="true" next="accepted"/>')
        self.parts.append(f'<recv request="NOTIFY"><action>{self._notify_checks()}</action></recv>')
        self.parts.append('<recv response="202"/>')
        self._send(_NOTIFY_OK, retrans=False)
        self.parts.append('<nop next="notified"/>')
        self.parts.append('<label id="accepted"/>')
        self.parts.append(f'<recv request="NOTIFY"><action>{self._notify_checks()}</action></recv>')
        self._send(_NOTIFY_OK, retrans=False)
        self.parts.append('<label id="notified"/>')
        connected = self._check("connected", "SIP/2.0 200")
        over = self._header_check("over", "Subscription-State:", "terminated")
        self.parts.append(
            f'<recv request="NOTIFY" timeout="40000"><action>{connected}{over}</action></recv>'
        )
        self._send(_OK, retrans=False)
        self._send(self._request("BYE"))
        self.parts.append('<recv response="200" crlf="true"/>')

    def _notify_checks(self) -> str:
        """Check a NOTIFY says 100 Trying and keep the headers its 200 needs."""
        kept = "".join(
            f'<ereg regexp=".*" search_in="hdr" header="{header}:" assign_to="{name}"/>'
            for header, name in _NOTIFY_HEADERS
        )
        if "trying" not in self.checks:
            self.checks += ["trying", *(name for _, name in _NOTIFY_HEADERS)]
        check = '<ereg regexp="SIP/2.0 100" search_in="body" check_it="true" assign_to="trying"/>'
        return check + kept

    def _await_bye(self) -> None:
        self.parts.append('<recv request="BYE" timeout="30000"/>')
        self._send(_OK, retrans=False)


_NOTIFY_HEADERS = (
    ("Via", "notify_via"),
    ("From", "notify_from"),
    ("To", "notify_to"),
    ("Call-ID", "notify_call"),
    ("CSeq", "notify_cseq"),
)
_NOTIFY_OK = """      SIP/2.0 200 OK
      Via: [$notify_via]
      From: [$notify_from]
      To: [$notify_to]
      Call-ID: [$notify_call]
      CSeq: [$notify_cseq]
      Content-Length: 0
"""
_OK = """      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
"""
