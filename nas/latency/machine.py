"""Which machine a table was measured on: a fingerprint in every measured table's header, and the
check that a table is being used on the machine it describes.

    # measured_on: machine          compare `machine` with this machine (measured tables)
    # machine: {cpu: AMD EPYC, cpu_id: AuthenticAMD family 25 model 1 stepping 1,
    #           isa: [avx2], cores: 2, os: Linux x86_64, runtime: onnxruntime 1.32.0, threads: 1}

`cpu_id` is the processor's identity as the CPU reports it (x86: vendor, family, model,
stepping; ARM: implementer, part, variant), because a virtual machine's model name can be as
generic as "AMD EPYC" for every generation: family 25 model 1 is a Zen 3 (AVX2), family 25 model
17 a Zen 4 (AVX-512), and an op costs differently on each.

`measured_on: derived` (a table computed from published figures, like pixel) and
`measured_on: device` (measured on another device on purpose, e.g. a phone over adb) are never
compared. A field whose value is `unknown` is not compared either (the shipped local-cpu table
predates fingerprints, so its ISA flags are not known). Every other difference makes the table
*foreign* here: predictions warn once per process, and `nas search` refuses it unless
`--allow-foreign-table` is given.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import sys

from nas.errors import NasError

# The ISA extensions that change which kernels a runtime picks (MLAS, XNNPACK): 256-bit and
# 512-bit vectors, int8 dot products, and ARM's advanced SIMD ("neon" on 32-bit, "asimd" on 64-bit).
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "neon", "asimd")
COMPARED = ("cpu", "cpu_id", "isa", "cores", "runtime")
UNKNOWN = "unknown"
NOT_COMPARED = ("derived", "device")


# /proc/cpuinfo fields that identify a processor, as "<label> <value>" (x86, then ARM)
ID_FIELDS = {"vendor_id": "", "cpu family": "family", "model": "model", "stepping": "stepping",
             "cpu implementer": "implementer", "cpu part": "part", "cpu variant": "variant"}


def parse_cpuinfo(text: str) -> tuple[str | None, frozenset[str], dict[str, str]]:
    """The CPU model, the flags and the ID_FIELDS of the first processor in /proc/cpuinfo's text."""
    model, flags, ids = None, set(), {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name in ("model name", "hardware", "cpu model") and model is None:
            model = value
        elif name in ("flags", "features") and not flags:
            flags = set(value.split())
        elif name in ID_FIELDS and value:
            ids.setdefault(name, value)
    return model, frozenset(flags), ids


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str | None, frozenset[str], dict[str, str]]:
    """`parse_cpuinfo` of this machine (None, {}, {} where there is no /proc/cpuinfo)."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            return parse_cpuinfo(f.read())
    return None, frozenset(), {}


def identity(ids: dict[str, str]) -> str:
    """A processor's identity from its ID_FIELDS ("AuthenticAMD family 25 model 1 stepping 1",
    ARM "implementer 0x41 part 0xd0c variant 0x3"), `unknown` without them."""
    parts = [f"{label} {ids[name]}".strip() for name, label in ID_FIELDS.items() if name in ids]
    return " ".join(parts) if parts else UNKNOWN


def cpu_id() -> str:
    """This processor's `identity`."""
    return identity(_cpuinfo()[2])


def cpu_model() -> str:
    """The CPU model string ("AMD EPYC", "Intel(R) Xeon(R) CPU @ 2.60GHz"), or the platform's
    processor name where /proc/cpuinfo has none."""
    model, _, _ = _cpuinfo()
    return model or platform.processor() or platform.machine() or UNKNOWN


def isa_flags() -> list[str] | str:
    """The ISA_FLAGS this CPU has, sorted; `unknown` where the OS does not list CPU flags.
    (64-bit ARM always has advanced SIMD; macOS lists no flags, so arm64 there reports asimd.)"""
    _, flags, _ = _cpuinfo()
    if not flags:
        return ["asimd"] if platform.machine().lower() in ("arm64", "aarch64") else UNKNOWN
    return sorted(f for f in ISA_FLAGS if f in flags)


def runtime_version_here(runtime: str) -> str:
    """The installed version of a runtime ("onnxruntime 1.32.0"), or `unknown` when this process
    cannot run it (not installed, or a runtime only a device runs)."""
    from nas.latency.measure import runtime_version
    try:
        return runtime_version(runtime)
    except (NasError, ImportError):
        return UNKNOWN


def this_machine(runtime: str, threads: int) -> dict:
    """This machine's fingerprint for a table timed with `runtime` on `threads` threads."""
    return {"cpu": cpu_model(), "cpu_id": cpu_id(), "isa": isa_flags(), "cores": os.cpu_count() or UNKNOWN,
            "os": f"{platform.system()} {platform.machine()}".strip() or UNKNOWN,
            "runtime": runtime_version_here(runtime), "threads": threads}


def is_compared(header: dict) -> bool:
    """Whether a table describes a machine that can be compared with this one (a measured table
    not marked `measured_on: derived` or `measured_on: device`)."""
    return (header.get("method") == "measured"
            and str(header.get("measured_on", "machine")) not in NOT_COMPARED)


def differences(header: dict, here: dict) -> list[str]:
    """The compared fingerprint fields whose known values differ ("cpu: A here B"); a measured
    table without a `machine` fingerprint gives one entry saying so. Empty when the table is
    this machine's or is not compared."""
    if not is_compared(header):
        return []
    there = header.get("machine")
    if not isinstance(there, dict):
        return ["the table records no machine fingerprint"]
    out = []
    for name in COMPARED:
        a, b = there.get(name, UNKNOWN), here.get(name, UNKNOWN)
        if UNKNOWN in (str(a), str(b)):
            continue
        if (sorted(a) if isinstance(a, list) else a) != (sorted(b) if isinstance(b, list) else b):
            out.append(name)
    return out


def describe(fp: dict | None) -> str:
    """A fingerprint on one line: "AMD EPYC (AuthenticAMD family 25 model 1 stepping 1), 2 cores,
    avx2, onnxruntime 1.32.0" (the identity only where it is known)."""
    if not isinstance(fp, dict):
        return "an unrecorded machine"
    isa = fp.get("isa", UNKNOWN)
    if isinstance(isa, list):
        isa = "+".join(isa) if isa else "no AVX2/AVX-512/NEON"
    else:
        isa = f"ISA flags {isa}"
    ident = fp.get("cpu_id", UNKNOWN)
    cpu = f"{fp.get('cpu', UNKNOWN)}" + (f" ({ident})" if ident != UNKNOWN else "")
    return f"{cpu}, {fp.get('cores', UNKNOWN)} cores, {isa}, {fp.get('runtime', UNKNOWN)}"


def build_command(target: str) -> str:
    return f"nas latency build --target {target} --quick"


def foreign_message(target: str, header: dict, here: dict) -> str | None:
    """One line naming both machines and the command that builds a table here, when `target`'s
    table was measured on another machine; None when it was not (or is not compared)."""
    diff = differences(header, here)
    if not diff:
        return None
    what = "differ in " + ", ".join(diff) if header.get("machine") else "it records no machine fingerprint"
    return (f"latency table {target!r} was measured on {describe(header.get('machine'))}; this machine is "
            f"{describe(here)} ({what}), so its predictions may not hold here; build a table for this "
            f"machine (about 3 minutes): {build_command(target)}")


def check_here(target: str, header: dict) -> str | None:
    """`foreign_message` for this machine (with the table's runtime and threads)."""
    if not is_compared(header):
        return None
    here = this_machine(str(header.get("runtime", "")), int(header.get("threads", 1) or 1))
    return foreign_message(target, header, here)


def status(target: str, header: dict) -> str:
    """Where a table stands here, for `nas latency targets`: "derived", "device", "another
    machine", "this machine", or "this machine? (isa unknown)" when only some fields could be
    compared."""
    if not is_compared(header):
        return str(header.get("measured_on", header.get("method", "")))
    if check_here(target, header):
        return "another machine"
    there = header.get("machine", {})
    unknown = [k for k in COMPARED if str(there.get(k, UNKNOWN)) == UNKNOWN]
    return f"this machine? ({', '.join(unknown)} unknown)" if unknown else "this machine"


_warned: set = set()


def warn_if_foreign(target: str, path: str, mtime_ns: int, header: dict) -> None:
    """Print `check_here`'s line to stderr once per process and table file version."""
    key = (path, mtime_ns)
    if key in _warned:
        return
    _warned.add(key)
    message = check_here(target, header)
    if message:
        print(f"warning: {message}", file=sys.stderr)
