"""A target's network: its index, network namespace and veth pair, and the ranges it answers on (`answer`,
`unanswer`: routes into its namespace for the local cloud's floating IPs)."""

import ipaddress
import json
import re

from . import common
from .common import MAX_TARGETS, Fail, flock, log, require_root, run
from .state import all_states, load_state, running_state, save_state


def netns_name(name):
    # /run/netns entries are plain file names (no 15-char limit like
    # interfaces), so cvm-NAME always fits; interfaces are named by index.
    return f"cvm-{name}"


def host_used_indexes():
    """Indexes already taken on the host, also by leftovers without state."""
    used = set()
    out = run(["ip", "-j", "addr", "show"], capture=True).stdout
    for link in json.loads(out or "[]"):
        m = re.fullmatch(r"cvmh(\d+)", link.get("ifname", ""))
        if m:
            used.add(int(m.group(1)))
        for a in link.get("addr_info", []):
            m = re.fullmatch(r"10\.231\.(\d+)\.\d+", a.get("local", ""))
            if m:
                used.add(int(m.group(1)))
    return used


def allocate_index():
    used = host_used_indexes() | {st["index"] for st in all_states() if "index" in st}
    for n in range(MAX_TARGETS):
        if n not in used:
            return n
    raise Fail(f"all {MAX_TARGETS} target slots in 10.231.0.0/16 are taken")


def setup_network(st):
    ns, veth, n = st["netns"], st["veth"], st["index"]
    run(["ip", "netns", "add", ns], capture=True)
    # The target side is created straight inside the namespace as eth0, as a VM would have.
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns], capture=True)
    run(["ip", "addr", "add", f"10.231.{n}.1/30", "dev", veth], capture=True)
    run(["ip", "link", "set", veth, "up"], capture=True)
    run(["ip", "-n", ns, "addr", "add", f"10.231.{n}.2/30", "dev", "eth0"], capture=True)
    run(["ip", "-n", ns, "link", "set", "eth0", "up"], capture=True)
    run(["ip", "-n", ns, "link", "set", "lo", "up"], capture=True)


def route_device(address):
    """The host's outgoing interface for an address (what `ip route get` says)."""
    out = run(["ip", "-j", "route", "get", str(address)], capture=True).stdout
    return (json.loads(out or "[{}]") or [{}])[0].get("dev")


def parse_answer_cidr(cidr):
    try:
        net = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError as e:
        raise Fail(f"answer: '{cidr}' is not an IPv4 network address with a prefix, e.g. 172.24.4.0/24 ({e})")
    if net.prefixlen < 16:
        raise Fail(f"answer: {cidr} is larger than a /16; refusing to route that much into one machine")
    for reserved in ("10.231.0.0/16", "127.0.0.0/8", "0.0.0.0/8", "224.0.0.0/4", "169.254.0.0/16"):
        if net.overlaps(ipaddress.IPv4Network(reserved)):
            raise Fail(f"answer: {cidr} overlaps {reserved}, which the host or the targets' links use")
    return net


def drop_answer(st, cidr):
    """Undo one `answer` of a target (its routes and its record). Call with the target's lock held."""
    run(["ip", "route", "del", cidr, "dev", st["veth"]], check=False, capture=True)
    run(["ip", "-n", st["netns"], "route", "del", "local", cidr, "dev", "lo", "table", "local"],
        check=False, capture=True)
    st["answers"] = [a for a in st.get("answers", []) if a != cidr]
    save_state(st)


def unanswer(cidr, keep=None):
    """No target (but KEEP) answers on CIDR any more. True when one did."""
    require_root()
    net = parse_answer_cidr(cidr)
    dropped = False
    for st in all_states():
        if st["name"] == keep or net.with_prefixlen not in st.get("answers", []):
            continue
        with flock(common.RUN_DIR / ".locks" / st["name"]):
            st = load_state(st["name"])
            if st and net.with_prefixlen in st.get("answers", []):
                drop_answer(st, net.with_prefixlen)
                log(f"{st['name']} no longer answers on {net.with_prefixlen}")
                dropped = True
    return dropped


def answer(name, cidr, move=False):
    """Make a running target answer on every address of CIDR, as if it held them all: an AnyIP `local` route
    inside its namespace, and a host route sending the range into its veth. The local cloud's fake hypervisor
    boots no VM, so this is how its floating IPs reach a real machine (one /32 per floating IP). MOVE takes
    the range over from another target that answers on it. Undone by `unanswer` or `stop` (the veth goes)."""
    require_root()
    net = parse_answer_cidr(cidr)
    cidr = net.with_prefixlen
    if move:
        unanswer(cidr, keep=name)
    with flock(common.RUN_DIR / ".locks" / name):
        st = running_state(name)
        probes = [net[0]] if net.num_addresses == 1 else [net[1], net[-2]]
        if cidr in st.get("answers", []) and route_device(probes[0]) == st["veth"]:
            return False
        # Refuse a range the host already reaches some other way than its default route (a local network,
        # another target's claim): the route below would take it over.
        routes = json.loads(run(["ip", "-j", "route", "show"], capture=True).stdout or "[]")
        for r in routes:
            dst = r.get("dst", "default")
            if dst == "default" or r.get("dev") == st["veth"]:
                continue
            other = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
            if isinstance(other, ipaddress.IPv4Network) and other.overlaps(net):
                raise Fail(f"answer: the host already routes {dst} via {r.get('dev')}, which overlaps {cidr}")
        run(["ip", "-n", st["netns"], "route", "replace", "local", cidr, "dev", "lo"], capture=True)
        run(["ip", "route", "replace", cidr, "via", st["address"], "dev", st["veth"]], capture=True)
        for probe in probes:
            if route_device(probe) != st["veth"]:
                run(["ip", "route", "del", cidr, "dev", st["veth"]], check=False, capture=True)
                raise Fail(f"answer: {probe} would not go to {name} ({st['veth']}); route removed again")
        st["answers"] = sorted(set(st.get("answers", [])) | {cidr})
        save_state(st)
    log(f"{name} answers on {cidr}")
    return True
