"""tegrastats lines from several JetPack releases, parsed field by field."""

from __future__ import annotations

from bienbao.bench import parse_tegrastats

JETPACK4_NANO = (
    "RAM 1580/3964MB (lfb 136x4MB) SWAP 0/1982MB (cached 0MB) IRAM 0/252kB(lfb 252kB) "
    "CPU [13%@1479,7%@1479,6%@1479,5%@1479] EMC_FREQ 3%@1600 GR3D_FREQ 0%@921 APE 25 PLL@38C "
    "CPU@41C PMIC@100C GPU@39.5C AO@47C thermal@40.25C POM_5V_IN 2448/2448 POM_5V_GPU 40/40 "
    "POM_5V_CPU 400/400"
)
JETPACK4_OLD_CPU = (
    "RAM 2016/3956MB (lfb 1x4MB) SWAP 0/1978MB (cached 0MB) CPU [12%,5%,off,off]@1479 "
    "EMC_FREQ 2%@1600 GR3D_FREQ 12%@76 POM_5V_IN 1900/2000"
)
JETPACK5_AGX_ORIN = (
    "11-22-2026 13:00:00 RAM 3446/31011MB (lfb 6215x4MB) SWAP 0/15505MB (cached 0MB) "
    "CPU [1%@729,0%@729,0%@729,0%@729,off,off,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305,305] "
    "VIC_FREQ 729 APE 174 CV0@-256C CPU@43.937C SOC2@40.843C SOC0@41.468C CV1@-256C GPU@-256C "
    "tj@43.937C SOC1@41.062C CV2@-256C VDD_GPU_SOC 2746mW/2746mW VDD_CPU_CV 686mW/686mW "
    "VIN_SYS_5V0 3427mW/3427mW VDDQ_VDD2_1V8AO 402mW/402mW"
)
JETPACK6_ORIN_NANO = (
    "11-22-2026 13:00:01 RAM 2120/7620MB (lfb 2x4MB) SWAP 0/3810MB (cached 0MB) "
    "CPU [2%@729,1%@729,0%@729,0%@729,0%@729,0%@729] GR3D_FREQ 37% cpu@47.531C soc2@46.187C "
    "soc0@46.437C gpu@47.437C tj@47.531C soc1@46.75C VDD_IN 4830mW/4790mW "
    "VDD_CPU_GPU_CV 560mW/540mW VDD_SOC 1400mW/1390mW"
)


def test_jetpack4_nano() -> None:
    sample = parse_tegrastats(JETPACK4_NANO)
    assert (sample.ram_used_mb, sample.ram_total_mb, sample.swap_used_mb) == (1580, 3964, 0)
    assert sample.cpu_load == (13.0, 7.0, 6.0, 5.0)
    assert (sample.gpu_load, sample.emc_load) == (0.0, 3.0)
    assert sample.temperatures["GPU"] == 39.5 and sample.temperatures["thermal"] == 40.25
    assert sample.rails_mw == {"POM_5V_IN": 2448, "POM_5V_GPU": 40, "POM_5V_CPU": 400}
    assert sample.input_power_mw == 2448


def test_jetpack4_older_cpu_format() -> None:
    sample = parse_tegrastats(JETPACK4_OLD_CPU)
    assert sample.cpu_load == (12.0, 5.0, None, None)
    assert sample.gpu_load == 12.0 and sample.input_power_mw == 1900


def test_jetpack5_agx_orin() -> None:
    sample = parse_tegrastats(JETPACK5_AGX_ORIN)
    assert sample.ram_used_mb == 3446 and sample.ram_total_mb == 31011
    assert sample.cpu_load == (1.0, 0.0, 0.0, 0.0, None, None, None, None)
    assert sample.gpu_load == 0.0
    assert sample.temperatures["tj"] == 43.937 and sample.temperatures["CV0"] == -256.0
    assert sample.rails_mw["VDD_GPU_SOC"] == 2746 and sample.input_power_mw == 3427  # VIN_SYS_5V0


def test_jetpack6_orin_nano() -> None:
    sample = parse_tegrastats(JETPACK6_ORIN_NANO)
    assert sample.ram_used_mb == 2120 and len(sample.cpu_load) == 6
    assert sample.gpu_load == 37.0 and sample.emc_load is None
    assert sample.rails_mw == {"VDD_IN": 4830, "VDD_CPU_GPU_CV": 560, "VDD_SOC": 1400}
    assert sample.input_power_mw == 4830
    assert "RAM" not in sample.rails_mw and "SWAP" not in sample.rails_mw


def test_a_line_without_the_fields_gives_empty_values() -> None:
    sample = parse_tegrastats("garbage")
    assert sample.ram_used_mb is None and sample.cpu_load == () and sample.input_power_mw is None
