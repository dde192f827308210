"""The CPU description that every speed figure carries: flags read from /proc/cpuinfo."""

from __future__ import annotations

from bienbao.core.cpu import describe_cpu

SAPPHIRE_RAPIDS = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni avx_vnni amx_bf16 amx_tile amx_int8
"""
ZEN3 = """model name\t: AMD EPYC 7B13 64-Core Processor
flags\t\t: fpu sse2 avx avx2 fma
"""
ORIN = """processor\t: 0
BogoMIPS\t: 62.50
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
"""


def test_each_cpu_kind_is_named_with_its_int8_instructions(tmp_path) -> None:
    cases = {"spr": (SAPPHIRE_RAPIDS, "x86_64"), "zen3": (ZEN3, "x86_64"), "orin": (ORIN, "aarch64")}
    found = {}
    for key, (text, arch) in cases.items():
        (tmp_path / key).write_text(text)
        found[key] = describe_cpu(tmp_path / key, arch)
    assert found["spr"]["isa"] == ["avx2", "avx512", "avx512_vnni", "avx_vnni", "amx_int8"]
    assert found["spr"]["int8"].startswith("AMX") and "Xeon" in found["spr"]["name"]
    assert found["zen3"]["isa"] == ["avx2"] and "saturate" in found["zen3"]["int8"]
    assert found["orin"]["isa"] == ["neon", "dotprod"] and found["orin"]["int8"] == "ARM dot product (sdot/udot)"
    assert found["orin"]["name"] == "aarch64"  # no model name on this ARM kernel: the architecture


def test_no_cpuinfo_still_describes_the_machine(tmp_path) -> None:
    info = describe_cpu(tmp_path / "missing", "arm64")
    assert info["isa"] == [] and info["int8"] == "ARM NEON without dot product"
