"""The `bienbao` entry point: discovery of installed commands, help, info, errors."""

from __future__ import annotations

import subprocess
import sys

from bienbao.cli import build_parser, main


def test_info_is_discovered_through_the_entry_point_group() -> None:
    parser, broken = build_parser()
    assert broken == []
    assert "info" in parser.format_help()


def test_info_lists_this_package_and_its_libraries(capsys) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "bienbao-cli" in out
    assert "commands:" in out and "info" in out
    assert "torch:" in out


def test_the_console_script_runs_without_torch() -> None:
    code = (
        "import sys; from bienbao.cli import main; main(['info']); "
        "print(sorted(m for m in ('torch', 'ultralytics') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]")


def test_unknown_command_is_an_argparse_error(capsys) -> None:
    try:
        main(["no-such-command"])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("an unknown command must fail")
    assert "invalid choice" in capsys.readouterr().err


def test_a_reader_that_leaves_early_gets_no_traceback() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        f"'{sys.executable}' -m bienbao.cli info | head -c 10", shell=True, capture_output=True, text=True, check=False
    )
    assert len(result.stdout) == 10 and "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
