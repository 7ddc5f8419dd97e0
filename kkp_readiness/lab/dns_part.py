"""The lab's DNS: two dnsmasq servers (primary and secondary) serving the zone ``kkp.lab``.

A site's DNS usually has (at least) two resolvers, and KKP needs wildcard records for the master
ingress (``*.kkp.lab``) and for every seed's nodeport proxy (``*.seed.kkp.lab``). dnsmasq is used
because it is a real DNS server that starts in milliseconds without root and without zone files.

How the data maps onto dnsmasq (verified with dnsmasq 2.90):

* ``address=/D/IP`` answers IP for ``D`` and every name below it (a wildcard); the most specific
  domain wins, so ``address=/seed.kkp.lab/...`` overrides ``address=/kkp.lab/...`` below it.
* ``host-record=NAME,IP`` wins over ``address=`` for that exact name.
* ``local=/D/`` makes names below ``D`` that have no record answer NXDOMAIN instead of being
  forwarded; next to ``address=`` it also makes other record types (AAAA, ...) answer NODATA
  instead of REFUSED (dnsmasq >= 2.86 otherwise forwards them, and there is no upstream).
* ``local=/#/`` does the same for every name outside the zone: nothing is ever forwarded.
* ``dns-rr=kkp.lab,6,<hex>`` and ``dns-rr=kkp.lab,2,<hex>`` add the zone's SOA and NS records at the
  apex (raw record data, built with dnspython); they change no other answer. dnsmasq's own
  authoritative mode (``auth-zone``) is not used: inside an auth zone it ignores ``address=``, so
  the wildcards would stop answering. The name servers ``ns1``/``ns2.kkp.lab`` get host records
  (the lab's DNS address), as a zone's NS targets have.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.rdata

from kkp_readiness.allowlist import all_hosts
from kkp_readiness.lab.part import LabContext, Part
from kkp_readiness.lab.process import Daemon, free_port
from kkp_readiness.lab.topology import (
    BASE_DOMAIN,
    DNS_ADDRESS,
    INGRESS_ADDRESS,
    MIRROR_NAME,
    NODEPORT_PROXY_ADDRESS,
    OIDC_PROVIDER_NAME,
    PROXY_NAME,
    SEED_DOMAIN,
    SEED_MLA_NAMES,
    require_loopback,
)

DNSMASQ = "/usr/sbin/dnsmasq"
#: TTL of every answer; short, as in a lab, but not zero so that answers look like real ones.
TTL = 60


@dataclass
class DnsData:
    """What one DNS server answers.

    ``wildcards`` maps a domain to the address of the domain and every name below it, or to
    ``None`` when the domain has no wildcard (then only explicit names below it exist, the rest
    is NXDOMAIN). ``hosts`` maps explicit names to addresses; they win over wildcards.
    ``zone``: the server serves the SOA and NS records of ``BASE_DOMAIN`` (False: it only holds
    address records for the names, like a forwarder's static overrides; INFRA-008 fails).
    """

    wildcards: dict[str, str | None] = field(default_factory=dict)
    hosts: dict[str, str] = field(default_factory=dict)
    zone: bool = True


#: The zone's name servers (NS targets at the apex) and its SOA record, as a zone file writes them.
NAMESERVERS = (f"ns1.{BASE_DOMAIN}", f"ns2.{BASE_DOMAIN}")
SOA = f"{NAMESERVERS[0]}. hostmaster.{BASE_DOMAIN}. 2026010101 3600 600 604800 {TTL}"


def zone_records() -> list[str]:
    """dnsmasq lines adding the SOA and NS records at the apex of ``BASE_DOMAIN`` (type 6 and 2)."""
    records = [("SOA", 6, SOA), *(("NS", 2, f"{ns}.") for ns in NAMESERVERS)]
    lines = [f"dns-rr={BASE_DOMAIN},{number},{dns.rdata.from_text('IN', kind, data).to_wire().hex()}"
             for kind, number, data in records]
    return lines + [f"host-record={ns},{require_loopback(DNS_ADDRESS)}" for ns in NAMESERVERS]


def healthy_dns_data() -> DnsData:
    """The records of a healthy KKP site (see topology): two wildcards, the seed MLA names and the own
    OIDC provider (an explicit record, as a site has for a host outside KKP's names)."""
    return DnsData(
        wildcards={BASE_DOMAIN: INGRESS_ADDRESS, SEED_DOMAIN: NODEPORT_PROXY_ADDRESS},
        hosts={**{name: INGRESS_ADDRESS for name in SEED_MLA_NAMES}, OIDC_PROVIDER_NAME: INGRESS_ADDRESS},
    )


@dataclass
class DnsPlan:
    """Data of both servers; faults edit it before anything is written or started."""

    primary: DnsData = field(default_factory=healthy_dns_data)
    secondary: DnsData = field(default_factory=healthy_dns_data)

    def servers(self) -> tuple[DnsData, DnsData]:
        return self.primary, self.secondary


def render_dnsmasq_conf(data: DnsData, port: int, pid_file: Path, log_file: Path, role: str) -> str:
    """dnsmasq configuration answering ``data`` on ``DNS_ADDRESS:port``, UDP and TCP, forwarding nothing."""
    lines = [
        f"# kkp_readiness lab: {role} DNS server for {BASE_DOMAIN} (generated, do not edit)",
        "no-resolv",
        "no-hosts",
        "no-poll",
        "bind-interfaces",
        f"listen-address={require_loopback(DNS_ADDRESS)}",
        f"port={port}",
        f"pid-file={pid_file}",
        f"log-facility={log_file}",
        "log-queries",
        f"local-ttl={TTL}",
        "# names outside the zone: NXDOMAIN, never forwarded",
        "local=/#/",
    ]
    # Less specific domains first only for readability; dnsmasq picks the most specific match.
    for domain in sorted(data.wildcards, key=lambda d: d.count(".")):
        address = data.wildcards[domain]
        lines.append(f"local=/{domain}/")
        if address is not None:
            lines.append(f"address=/{domain}/{require_loopback(address)}")
    for name, address in sorted(data.hosts.items()):
        lines.append(f"host-record={name},{require_loopback(address)}")
    if data.zone:
        lines.extend(zone_records())
    return "\n".join(lines) + "\n"


def query_answered(port: int, name: str = BASE_DOMAIN, tcp: bool = False, timeout: float = 1.0) -> bool:
    """True if the server on ``DNS_ADDRESS:port`` answers a query for ``name`` (any rcode but REFUSED)."""
    message = dns.message.make_query(name, "A")
    if tcp:
        response = dns.query.tcp(message, DNS_ADDRESS, port=port, timeout=timeout)
    else:
        response = dns.query.udp(message, DNS_ADDRESS, port=port, timeout=timeout)
    return response.rcode() != dns.rcode.REFUSED


class DnsPart(Part):
    """Primary and secondary dnsmasq on 127.0.0.1, each on its own free port."""

    name = "dns"
    roles = ("primary", "secondary")

    def start(self, ctx: LabContext) -> dict[str, Any]:
        plan = DnsPlan()
        for fault in ctx.faults_for(self.name):
            fault.apply(plan)
        # The site's way out (egress_part): the allowlisted hosts, the proxy and the mirror, on this lab's
        # own egress address. Explicit records, so they win over the *.kkp.lab wildcard.
        egress = ctx.egress_address()
        for data in plan.servers():
            data.hosts.update({name: egress for name in (*all_hosts(), PROXY_NAME, MIRROR_NAME)})
        directory = ctx.directory(self.name)
        endpoints = {}
        for role, data in zip(self.roles, plan.servers(), strict=True):
            daemon = self.launch(lambda role=role, data=data: self._server(ctx, directory, role, data))
            endpoints[role] = f"{DNS_ADDRESS}:{daemon.port}"
        self.state = {**endpoints, "pids": [d.pid for d in self.daemons]}
        return self.state

    def _server(
        self, ctx: LabContext, directory: Path, role: str, data: DnsData
    ) -> tuple[Daemon, Callable[[], bool]]:
        port = free_port(DNS_ADDRESS, udp=True)
        conf = directory / f"{role}.conf"
        log_file = directory / f"{role}.log"
        conf.write_text(render_dnsmasq_conf(data, port, directory / f"{role}.pid", log_file, role))
        argv = [DNSMASQ, "--keep-in-foreground", f"--conf-file={conf}"]
        if ctx.as_root:
            # As root dnsmasq drops to "nobody" by default; staying root avoids depending on
            # that account (and on group "dip") existing. A normal user never switches.
            argv.append("--user=root")
        daemon = Daemon(
            f"dns-{role}", argv, directory / f"{role}.out", marker=str(conf), extra_logs=[log_file], port=port
        )

        def check() -> bool:
            # TCP first: a closed TCP port is refused at once, while a UDP query to a port that
            # is not bound yet only fails at its timeout (dnspython does not connect UDP sockets).
            return query_answered(port, tcp=True) and query_answered(port, tcp=False)

        return daemon, check

    def ports(self) -> list[int]:
        return [int(self.state[role].rsplit(":", 1)[1]) for role in self.roles]

    def answering(self) -> bool:
        return all(query_answered(port, timeout=0.5) for port in self.ports())
